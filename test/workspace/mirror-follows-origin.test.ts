import assert from 'node:assert/strict';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { commit, type Fixture, fixture, sh } from './origin-repo.ts';

describe('the mirror follows the origin', () => {
  let f: Fixture;
  afterEach(() => f.cleanup());

  describe('with main as the default branch', () => {
    beforeEach(() => {
      f = fixture('main');
    });

    it('is created bare on the first refresh, under a root only the owner can enter', async () => {
      const r = await f.ws.refreshMirror(f.repo);
      assert.deepEqual(r, { defaultBranch: 'main', commit: sh(f.origin, 'rev-parse', 'HEAD') });
      const mirror = f.ws.mirrorPath('app');
      assert.equal(mirror, join(f.root, 'state', 'mirrors', 'app.git'));
      assert.equal(sh(mirror, 'rev-parse', '--is-bare-repository'), 'true');
      assert.equal(statSync(join(f.root, 'state')).mode & 0o777, 0o700);
    });

    it('picks up new commits on the next refresh', async () => {
      const first = await f.ws.refreshMirror(f.repo);
      commit(f.origin, { 'README.md': 'v2\n' }, 'second');
      const second = await f.ws.refreshMirror(f.repo);
      assert.notEqual(second.commit, first.commit);
      assert.equal(second.commit, sh(f.origin, 'rev-parse', 'HEAD'));
    });

    it('prunes branches deleted on the origin', async () => {
      sh(f.origin, 'branch', 'feature');
      await f.ws.refreshMirror(f.repo);
      assert.match(sh(f.ws.mirrorPath('app'), 'branch', '--list'), /feature/);
      sh(f.origin, 'branch', '-D', 'feature');
      await f.ws.refreshMirror(f.repo);
      assert.doesNotMatch(sh(f.ws.mirrorPath('app'), 'branch', '--list'), /feature/);
    });

    it('uses the configured default branch rather than the origin HEAD', async () => {
      sh(f.origin, 'checkout', '-q', '-b', 'release');
      commit(f.origin, { '.errand/sandbox.yaml': 'env: { release: "1" }\n' }, 'release');
      sh(f.origin, 'checkout', '-q', 'main');
      const repo = { ...f.repo, defaultBranch: 'release' };
      const r = await f.ws.refreshMirror(repo);
      assert.deepEqual(r, {
        defaultBranch: 'release',
        commit: sh(f.origin, 'rev-parse', 'release'),
      });
      assert.match(String(await f.ws.readTrustedFile(repo, r, '.errand/sandbox.yaml')), /release/);
    });

    it('names a configured default branch that does not exist and says how to fix it', async () => {
      await assert.rejects(f.ws.refreshMirror({ ...f.repo, defaultBranch: 'trunk' }), {
        code: 'git_failed',
        message: /default branch "trunk" of repository app does not exist.*default_branch/,
      });
    });

    it('is made again when an earlier clone left a broken folder behind', async () => {
      mkdirSync(f.ws.mirrorPath('app'), { recursive: true });
      writeFileSync(join(f.ws.mirrorPath('app'), 'junk'), 'half a clone');
      const r = await f.ws.refreshMirror(f.repo);
      assert.equal(r.commit, sh(f.origin, 'rev-parse', 'HEAD'));
    });
  });

  describe('with trunk as the default branch', () => {
    beforeEach(() => {
      f = fixture('trunk');
    });

    it('detects trunk from the origin HEAD when no branch is configured', async () => {
      const r = await f.ws.refreshMirror(f.repo);
      assert.equal(r.defaultBranch, 'trunk');
      assert.equal(r.commit, sh(f.origin, 'rev-parse', 'trunk'));
    });

    it('asks the origin again when the branch its HEAD named is gone', async () => {
      await f.ws.refreshMirror(f.repo);
      sh(f.origin, 'branch', '-m', 'trunk', 'main');
      const r = await f.ws.refreshMirror(f.repo);
      assert.equal(r.defaultBranch, 'main');
    });
  });
});
