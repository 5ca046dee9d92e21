import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { type WorkspaceRepo, Workspaces } from '../../src/workspace/index.ts';

let root: string;
let origin: string;
let ws: Workspaces;
let repo: WorkspaceRepo;

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 't',
  GIT_AUTHOR_EMAIL: 't@e',
  GIT_COMMITTER_NAME: 't',
  GIT_COMMITTER_EMAIL: 't@e',
};
const sh = (cwd: string, ...args: string[]) =>
  execFileSync('git', args, { cwd, env: GIT_ENV, encoding: 'utf8' }).trim();

function commit(dir: string, files: Record<string, string>, message: string): void {
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  sh(dir, 'add', '-A');
  sh(dir, 'commit', '-q', '-m', message);
}

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'errand-ws-'));
  origin = join(root, 'origin');
  mkdirSync(origin);
  sh(origin, 'init', '-q', '-b', 'trunk');
  commit(
    origin,
    {
      'README.md': 'v1\n',
      '.errand/container/Containerfile': 'FROM scratch\n',
      '.errand/network-allowlist.yaml': 'allow: []\n',
    },
    'init',
  );
  ws = new Workspaces({ root: join(root, 'state') });
  repo = { id: 'app', gitUrl: origin };
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('the mirror', () => {
  it('detects the default branch from the remote and follows new commits and deleted branches', async () => {
    const first = await ws.refreshMirror(repo);
    assert.equal(first.defaultBranch, 'trunk');
    sh(origin, 'branch', 'feature');
    commit(origin, { 'README.md': 'v2\n' }, 'second');
    const second = await ws.refreshMirror(repo);
    assert.notEqual(second.commit, first.commit);
    assert.match(sh(ws.mirrorPath('app'), 'branch', '--list'), /feature/);
    sh(origin, 'branch', '-D', 'feature');
    await ws.refreshMirror(repo);
    assert.doesNotMatch(sh(ws.mirrorPath('app'), 'branch', '--list'), /feature/, 'pruned');
  });

  it('shares one refresh among concurrent callers', async () => {
    const results = await Promise.all(Array.from({ length: 5 }, () => ws.refreshMirror(repo)));
    assert.equal(new Set(results.map((r) => r.commit)).size, 1);
  });

  it('names a missing configured branch and how to fix it', async () => {
    await assert.rejects(
      ws.refreshMirror({ ...repo, defaultBranch: 'main' }),
      /default branch "main" of repository app does not exist.*default_branch/,
    );
  });

  it('never shows a password from the repository URL in an error', async () => {
    const bad = { id: 'bad', gitUrl: 'https://user:s3cr3tpass@127.0.0.1:9/x.git' };
    await assert.rejects(ws.refreshMirror(bad), (e: Error) => {
      assert.doesNotMatch(e.message, /s3cr3tpass/);
      assert.match(e.message, /git clone --mirror failed for repository bad/);
      return true;
    });
  });
});

describe('a conversation workspace', () => {
  it('is a self-contained clone on the default branch with origin set to the real URL', async () => {
    await ws.refreshMirror(repo);
    const { dirs, created } = await ws.prepareConversation(repo, 'c_one');
    assert.equal(created, true);
    assert.equal(existsSync(join(dirs.workspace, '.git', 'objects', 'info', 'alternates')), false);
    assert.equal(sh(dirs.workspace, 'rev-parse', '--abbrev-ref', 'HEAD'), 'trunk');
    assert.equal(sh(dirs.workspace, 'remote', 'get-url', 'origin'), origin);
    rmSync(ws.mirrorPath('app'), { recursive: true });
    assert.match(sh(dirs.workspace, 'log', '--oneline'), /init/, 'works without the mirror');
    for (const d of [dirs.agentState, dirs.inbox, dirs.outbox, dirs.storage])
      assert.ok(existsSync(d));
  });

  it('is left as the agent left it on the next task, and separate from other conversations', async () => {
    await ws.refreshMirror(repo);
    const a = await ws.prepareConversation(repo, 'c_a');
    writeFileSync(join(a.dirs.workspace, 'wip.txt'), 'agent work');
    const again = await ws.prepareConversation(repo, 'c_a');
    assert.equal(again.created, false);
    assert.equal(readFileSync(join(a.dirs.workspace, 'wip.txt'), 'utf8'), 'agent work');
    const b = await ws.prepareConversation(repo, 'c_b');
    assert.notEqual(b.dirs.root, a.dirs.root);
    assert.equal(existsSync(join(b.dirs.workspace, 'wip.txt')), false);
  });

  it('refuses ids that would leave its folder', () => {
    assert.throws(() => ws.dirs('app', '../x'), /invalid conversation id/);
    assert.throws(() => ws.dirs('../etc', 'c_1'), /invalid repository id/);
  });

  it('is removed with its folders', async () => {
    await ws.refreshMirror(repo);
    const { dirs } = await ws.prepareConversation(repo, 'c_gone');
    await ws.removeConversation('app', 'c_gone');
    assert.equal(existsSync(dirs.root), false);
  });

  it('does not keep credentials from the repository URL in its git config', async () => {
    await ws.refreshMirror({ id: 'cred', gitUrl: origin });
    // The clone comes from the mirror; only origin's URL is taken from the config.
    const { dirs } = await ws.prepareConversation(
      { id: 'cred', gitUrl: 'https://bot:tok3n@git.example.com/app.git' },
      'c_cred',
    );
    assert.equal(
      sh(dirs.workspace, 'remote', 'get-url', 'origin'),
      'https://git.example.com/app.git',
    );
    assert.doesNotMatch(readFileSync(join(dirs.workspace, '.git', 'config'), 'utf8'), /tok3n/);
  });
});

describe('trusted files', () => {
  it('come from the default branch, not from a workspace nor another branch', async () => {
    await ws.refreshMirror(repo);
    const { dirs } = await ws.prepareConversation(repo, 'c_agent');
    writeFileSync(
      join(dirs.workspace, '.errand', 'network-allowlist.yaml'),
      'allow: [{ host: evil.example }]\n',
    );
    sh(dirs.workspace, 'commit', '-q', '-am', 'loosen the cage');
    sh(
      dirs.workspace,
      'push',
      '-q',
      '--no-verify',
      ws.mirrorPath('app'),
      'HEAD:refs/heads/agent-branch',
    );
    sh(origin, 'checkout', '-q', '-b', 'other');
    commit(
      origin,
      { '.errand/network-allowlist.yaml': 'allow: [{ host: other.example }]\n' },
      'other branch',
    );
    sh(origin, 'checkout', '-q', 'trunk');
    await ws.refreshMirror(repo);
    assert.equal(
      (await ws.readTrustedFile(repo, '.errand/network-allowlist.yaml'))!.toString(),
      'allow: []\n',
    );
    assert.equal(await ws.readTrustedFile(repo, '.errand/sandbox.yaml'), undefined);
  });

  it('follow a change merged into the default branch', async () => {
    await ws.refreshMirror(repo);
    const before = await ws.trustedTreeId(repo, '.errand/container');
    commit(origin, { 'README.md': 'unrelated\n' }, 'unrelated');
    await ws.refreshMirror(repo);
    assert.equal(
      await ws.trustedTreeId(repo, '.errand/container'),
      before,
      'another file changed: same tree',
    );
    commit(
      origin,
      { '.errand/container/Containerfile': 'FROM scratch\nRUN true\n' },
      'change image',
    );
    await ws.refreshMirror(repo);
    assert.notEqual(await ws.trustedTreeId(repo, '.errand/container'), before);
  });

  it('are extracted as a build context, with links that stay inside and none that escape', async () => {
    commit(origin, { '.errand/container/files/a.sh': '#!/bin/sh\n' }, 'files');
    symlinkSync('files/a.sh', join(origin, '.errand/container/link.sh'));
    commit(origin, {}, 'inner link');
    await ws.refreshMirror(repo);
    const dest = join(root, 'ctx');
    assert.equal(await ws.extractTrustedDir(repo, '.errand/container', dest), true);
    assert.equal(readFileSync(join(dest, 'Containerfile'), 'utf8'), 'FROM scratch\n');
    assert.ok(lstatSync(join(dest, 'link.sh')).isSymbolicLink());
    assert.equal(await ws.extractTrustedDir(repo, '.errand/missing', join(root, 'none')), false);
    symlinkSync('../../README.md', join(origin, '.errand/container/escape'));
    commit(origin, {}, 'escaping link');
    await ws.refreshMirror(repo);
    await assert.rejects(
      ws.extractTrustedDir(repo, '.errand/container', join(root, 'ctx2')),
      /symlink pointing outside/,
    );
  });
});
