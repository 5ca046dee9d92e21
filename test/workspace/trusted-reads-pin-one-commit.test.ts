import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, it } from 'node:test';
import { commit, type Fixture, fixture, sh } from './origin-repo.ts';

// A task reads the allowlist, the sandbox file and the container folder at different
// moments; another task's refresh may move the default branch in between. Every read
// names the commit the task's own refresh returned.
const ALLOWLIST = '.errand/network-allowlist.yaml';
const CONTAINER = '.errand/container';
let f: Fixture;
beforeEach(() => {
  f = fixture();
});
afterEach(() => f.cleanup());

it('reads the commit a mirror state names after the default branch has moved on', async () => {
  const first = await f.ws.refreshMirror(f.repo);
  const idBefore = await f.ws.trustedTreeId(f.repo, first, CONTAINER);
  assert.equal(String(await f.ws.readTrustedFile(f.repo, first, ALLOWLIST)), 'allow: []\n');

  commit(
    f.origin,
    {
      [ALLOWLIST]: 'allow: [{ host: evil.example }]\n',
      [`${CONTAINER}/Containerfile`]: 'FROM other\n',
    },
    'merged meanwhile',
  );
  const second = await f.ws.refreshMirror(f.repo);
  assert.notEqual(second.commit, first.commit);

  // The rest of the first task's reads: still its commit.
  const dest = join(f.root, 'ctx-first');
  assert.equal(await f.ws.extractTrustedDir(f.repo, first, CONTAINER, dest), true);
  assert.equal(readFileSync(join(dest, 'Containerfile'), 'utf8'), 'FROM scratch\n');
  assert.equal(String(await f.ws.readTrustedFile(f.repo, first, ALLOWLIST)), 'allow: []\n');
  assert.equal(await f.ws.trustedTreeId(f.repo, first, CONTAINER), idBefore);

  // The next task's: the new commit.
  assert.equal(
    String(await f.ws.readTrustedFile(f.repo, second, ALLOWLIST)),
    'allow: [{ host: evil.example }]\n',
  );
  assert.notEqual(await f.ws.trustedTreeId(f.repo, second, CONTAINER), idBefore);
});

it('reads the mirror state it was given when the branch moves without a refresh', async () => {
  const first = await f.ws.refreshMirror(f.repo);
  commit(f.origin, { [ALLOWLIST]: 'allow: [{ host: evil.example }]\n' }, 'pushed');
  // As a concurrent fetch does: the mirror's branch moves under a task that already began.
  const mirror = f.ws.mirrorPath(f.repo.id);
  sh(mirror, 'fetch', '-q', 'origin', '+refs/heads/main:refs/heads/main');
  assert.notEqual(sh(mirror, 'rev-parse', 'main'), first.commit);
  assert.equal(String(await f.ws.readTrustedFile(f.repo, first, ALLOWLIST)), 'allow: []\n');
  assert.deepEqual(await f.ws.mirrorState(f.repo), {
    defaultBranch: 'main',
    commit: sh(mirror, 'rev-parse', 'main'),
  });
});
