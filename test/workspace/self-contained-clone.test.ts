import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, it } from 'node:test';
import { type Fixture, fixture, sh } from './origin-repo.ts';

let f: Fixture;
beforeEach(() => {
  f = fixture('trunk');
});
afterEach(() => f.cleanup());

it('is a full clone with no alternates that still works once the mirror is deleted', async () => {
  await f.ws.refreshMirror(f.repo);
  const { dirs, created } = await f.ws.prepareConversation(f.repo, 'c_one');
  assert.equal(created, true);
  assert.equal(existsSync(join(dirs.workspace, '.git', 'objects', 'info', 'alternates')), false);
  rmSync(f.ws.mirrorPath('app'), { recursive: true });
  assert.match(sh(dirs.workspace, 'log', '--oneline'), /init/);
  sh(dirs.workspace, 'fsck', '--full', '--no-progress');
});

it('is on the default branch at its current commit, with origin set to the git URL', async () => {
  const { commit } = await f.ws.refreshMirror(f.repo);
  const { dirs } = await f.ws.prepareConversation(f.repo, 'c_one');
  assert.equal(sh(dirs.workspace, 'rev-parse', '--abbrev-ref', 'HEAD'), 'trunk');
  assert.equal(sh(dirs.workspace, 'rev-parse', 'HEAD'), commit);
  assert.equal(sh(dirs.workspace, 'status', '--porcelain'), '');
  assert.equal(sh(dirs.workspace, 'remote', 'get-url', 'origin'), f.origin);
});

it('keeps no path of the mirror in its git config', async () => {
  await f.ws.refreshMirror(f.repo);
  const { dirs } = await f.ws.prepareConversation(f.repo, 'c_one');
  const config = readFileSync(join(dirs.workspace, '.git', 'config'), 'utf8');
  assert.doesNotMatch(config, /mirrors/);
  assert.equal(sh(dirs.workspace, 'remote'), 'origin');
});

it('keeps no credentials from the git URL in its git config', async () => {
  await f.ws.refreshMirror({ id: 'cred', gitUrl: f.origin });
  // The clone comes from the mirror; only origin's URL is taken from the repository.
  const { dirs } = await f.ws.prepareConversation(
    { id: 'cred', gitUrl: 'https://bot:tok3n@git.example.com/app.git' },
    'c_cred',
  );
  assert.equal(
    sh(dirs.workspace, 'remote', 'get-url', 'origin'),
    'https://git.example.com/app.git',
  );
  assert.doesNotMatch(readFileSync(join(dirs.workspace, '.git', 'config'), 'utf8'), /tok3n|bot/);
});

it('creates the mirror first when the repository was never refreshed', async () => {
  const { dirs, created } = await f.ws.prepareConversation(f.repo, 'c_first');
  assert.equal(created, true);
  assert.equal(sh(dirs.workspace, 'rev-parse', 'HEAD'), sh(f.origin, 'rev-parse', 'trunk'));
});

it('leaves no half-made workspace behind when the clone fails', async () => {
  await f.ws.refreshMirror(f.repo);
  const repo = { ...f.repo, defaultBranch: 'nope' };
  await assert.rejects(f.ws.prepareConversation(repo, 'c_fail'), {
    code: 'git_failed',
    message: /git clone failed for repository app/,
  });
  const root = f.ws.dirs('app', 'c_fail').root;
  assert.deepEqual(readdirSync(root).sort(), ['agent', 'inbox', 'outbox', 'storage']);
  const again = await f.ws.prepareConversation(f.repo, 'c_fail');
  assert.equal(again.created, true);
});
