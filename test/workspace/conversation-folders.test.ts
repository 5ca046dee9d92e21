import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, it } from 'node:test';
import { commit, type Fixture, fixture, sh } from './origin-repo.ts';

let f: Fixture;
beforeEach(async () => {
  f = fixture();
  await f.ws.refreshMirror(f.repo);
});
afterEach(() => f.cleanup());

it('lays out the workspace, agent state, inbox, outbox and storage under the conversation, in the sandbox folder', async () => {
  const { dirs } = await f.ws.prepareConversation(f.repo, 'c_1');
  const root = join(f.root, 'sandboxes', 'conversations', 'app', 'c_1');
  assert.deepEqual(dirs, {
    root,
    workspace: join(root, 'workspace'),
    agentState: join(root, 'agent'),
    inbox: join(root, 'inbox'),
    outbox: join(root, 'outbox'),
    storage: join(root, 'storage'),
  });
  for (const d of Object.values(dirs)) assert.ok(statSync(d).isDirectory(), d);
  assert.equal(statSync(root).mode & 0o777, 0o700);
});

it('leaves the workspace as the agent left it on the next task', async () => {
  const { dirs } = await f.ws.prepareConversation(f.repo, 'c_1');
  writeFileSync(join(dirs.workspace, 'wip.txt'), 'uncommitted');
  commit(dirs.workspace, { 'done.txt': 'committed' }, 'agent commit');
  const head = sh(dirs.workspace, 'rev-parse', 'HEAD');
  commit(f.origin, { 'README.md': 'v2\n' }, 'upstream moves on');
  await f.ws.refreshMirror(f.repo);
  const again = await f.ws.prepareConversation(f.repo, 'c_1');
  assert.equal(again.created, false);
  assert.equal(readFileSync(join(dirs.workspace, 'wip.txt'), 'utf8'), 'uncommitted');
  assert.equal(sh(dirs.workspace, 'rev-parse', 'HEAD'), head);
});

it('does not clone again over a workspace whose .git the agent removed', async () => {
  const { dirs } = await f.ws.prepareConversation(f.repo, 'c_1');
  rmSync(join(dirs.workspace, '.git'), { recursive: true });
  writeFileSync(join(dirs.workspace, 'notes.txt'), 'keep me');
  const again = await f.ws.prepareConversation(f.repo, 'c_1');
  assert.equal(again.created, false);
  assert.equal(readFileSync(join(dirs.workspace, 'notes.txt'), 'utf8'), 'keep me');
});

it('gives two conversations separate folders and separate clones', async () => {
  const a = await f.ws.prepareConversation(f.repo, 'c_a');
  const b = await f.ws.prepareConversation(f.repo, 'c_b');
  const folders = (d: typeof a.dirs) => Object.values(d);
  for (const p of folders(a.dirs)) assert.ok(!folders(b.dirs).includes(p), p);
  writeFileSync(join(a.dirs.workspace, 'wip.txt'), 'a only');
  writeFileSync(join(a.dirs.storage, 'kept.txt'), 'a only');
  assert.equal(existsSync(join(b.dirs.workspace, 'wip.txt')), false);
  assert.equal(existsSync(join(b.dirs.storage, 'kept.txt')), false);
});

it('prepares one clone when the same conversation is prepared twice at once', async () => {
  const [x, y] = await Promise.all([
    f.ws.prepareConversation(f.repo, 'c_1'),
    f.ws.prepareConversation(f.repo, 'c_1'),
  ]);
  assert.equal(x.created, true);
  assert.equal(y.created, true, 'the second caller shares the first one');
  assert.match(sh(x.dirs.workspace, 'log', '--oneline'), /init/);
});

it('deletes all of a conversation folders on removal, and no other conversation', async () => {
  const { dirs } = await f.ws.prepareConversation(f.repo, 'c_gone');
  const other = await f.ws.prepareConversation(f.repo, 'c_kept');
  await f.ws.removeConversation('app', 'c_gone');
  assert.equal(existsSync(dirs.root), false);
  assert.ok(existsSync(join(other.dirs.workspace, '.git')));
  await f.ws.removeConversation('app', 'c_gone');
});

for (const [kind, repoId, conversationId] of [
  ['conversation', 'app', '../x'],
  ['conversation', 'app', '..'],
  ['conversation', 'app', 'a/b'],
  ['conversation', 'app', '.hidden'],
  ['conversation', 'app', ''],
  ['conversation', 'app', 'x'.repeat(65)],
  ['repository', '../etc', 'c_1'],
  ['repository', 'a..b', 'c_1'],
] as const) {
  it(`refuses the ${kind} id ${JSON.stringify(kind === 'repository' ? repoId : conversationId).slice(0, 20)} before building a path`, async () => {
    const message = new RegExp(`invalid ${kind} id`);
    assert.throws(() => f.ws.dirs(repoId, conversationId), { code: 'usage', message });
    await assert.rejects(
      async () => f.ws.prepareConversation({ ...f.repo, id: repoId }, conversationId),
      { code: 'usage', message },
    );
    await assert.rejects(f.ws.removeConversation(repoId, conversationId), { code: 'usage' });
  });
}

it('accepts the ids the store makes', () => {
  assert.doesNotThrow(() => f.ws.dirs('app', 'c_4k9x2m7qa1'));
  assert.doesNotThrow(() => f.ws.dirs('my-repo.v2', 'c_1'));
});

it('makes spare folders a new conversation: the default branch cloned into the same folder', async () => {
  const spare = await f.ws.spareDirs('app');
  const workspaceInode = statSync(spare.workspace).ino;
  const dirs = await f.ws.adoptSpare(f.repo, spare, 'c_spare');
  assert.deepEqual(dirs, f.ws.dirs('app', 'c_spare'));
  assert.equal(existsSync(spare.root), false);
  // The same folder, renamed: a sandbox that mounted it sees the clone.
  assert.equal(statSync(dirs.workspace).ino, workspaceInode);
  assert.equal(readFileSync(join(dirs.workspace, 'README.md'), 'utf8'), 'v1\n');
  const again = await f.ws.prepareConversation(f.repo, 'c_spare');
  assert.equal(again.created, false);
});

it('refuses spare folders for a conversation that has folders, and leaves both as they were', async () => {
  const { dirs } = await f.ws.prepareConversation(f.repo, 'c_1');
  writeFileSync(join(dirs.workspace, 'wip.txt'), 'mine');
  const spare = await f.ws.spareDirs('app');
  await assert.rejects(f.ws.adoptSpare(f.repo, spare, 'c_1'), /has folders already/);
  assert.equal(readFileSync(join(dirs.workspace, 'wip.txt'), 'utf8'), 'mine');
  assert.ok(existsSync(spare.workspace));
});

it('lists the spare folders an earlier process left, and no conversation', async () => {
  await f.ws.prepareConversation(f.repo, 'c_1');
  const conversations = join(f.root, 'sandboxes', 'conversations', 'app');
  // A process that is gone (its id is free once it exited), and an older errand's name.
  const dead = spawnSync('true').pid!;
  const left = [join(conversations, `.spare-${dead}-0a1b2c`), join(conversations, '.spare-0a1b2c')];
  const legacy = join(f.root, 'state', 'conversations', 'app', '.spare-0a1b2c');
  for (const d of [...left, legacy]) mkdirSync(join(d, 'workspace'), { recursive: true });
  assert.deepEqual(f.ws.leftSpares().sort(), [...left, legacy].sort());
});

it('keeps the spare folders of a process that is running (another errand on the same folder)', async () => {
  const spare = await f.ws.spareDirs('app');
  assert.ok(existsSync(spare.workspace));
  assert.deepEqual(f.ws.leftSpares(), []);
});

it('keeps using the folders of a conversation an older errand made under the state folder', async () => {
  const legacy = join(f.root, 'state', 'conversations', 'app', 'c_old');
  mkdirSync(join(legacy, 'workspace'), { recursive: true });
  writeFileSync(join(legacy, 'workspace', 'wip.txt'), 'from before');
  const { dirs, created } = await f.ws.prepareConversation(f.repo, 'c_old');
  assert.equal(created, false);
  assert.equal(dirs.root, legacy);
  assert.equal(readFileSync(join(dirs.workspace, 'wip.txt'), 'utf8'), 'from before');
  assert.ok(existsSync(dirs.outbox));
  await f.ws.removeConversation('app', 'c_old');
  assert.equal(existsSync(legacy), false);
  // A new conversation goes to the sandbox folder.
  assert.equal(
    f.ws.dirs('app', 'c_new').root,
    join(f.root, 'sandboxes', 'conversations', 'app', 'c_new'),
  );
});
