import assert from 'node:assert/strict';
import { afterEach, beforeEach, it } from 'node:test';
import { commit, type Fixture, fixture, sh } from './origin-repo.ts';

const DIR = '.errand/container';
let f: Fixture;
beforeEach(async () => {
  f = fixture();
  await f.ws.refreshMirror(f.repo);
});
afterEach(() => f.cleanup());

const id = async (dir = DIR) =>
  await f.ws.trustedTreeId(f.repo, await f.ws.mirrorState(f.repo), dir);

it('is a sha256 in hex', async () => {
  assert.match((await id())!, /^[0-9a-f]{64}$/);
});

it('stays the same when a file outside the folder changes', async () => {
  const before = await id();
  commit(f.origin, { 'README.md': 'v2\n', '.errand/sandbox.yaml': 'env: { a: "1" }\n' }, 'other');
  await f.ws.refreshMirror(f.repo);
  assert.equal(await id(), before);
});

it('changes when a file in the folder changes on the default branch', async () => {
  const before = await id();
  commit(f.origin, { [`${DIR}/Containerfile`]: 'FROM scratch\nRUN true\n' }, 'image');
  await f.ws.refreshMirror(f.repo);
  assert.notEqual(await id(), before);
});

it('changes when a file in the folder becomes executable', async () => {
  const before = await id();
  sh(f.origin, 'update-index', '--chmod=+x', `${DIR}/Containerfile`);
  sh(f.origin, 'commit', '-q', '-m', 'mode');
  await f.ws.refreshMirror(f.repo);
  assert.notEqual(await id(), before);
});

it('does not change for a change on another branch or in a workspace', async () => {
  const before = await id();
  const { dirs } = await f.ws.prepareConversation(f.repo, 'c_1');
  commit(dirs.workspace, { [`${DIR}/Containerfile`]: 'FROM evil\n' }, 'agent');
  sh(f.origin, 'checkout', '-q', '-b', 'other');
  commit(f.origin, { [`${DIR}/Containerfile`]: 'FROM other\n' }, 'other branch');
  sh(f.origin, 'checkout', '-q', 'main');
  await f.ws.refreshMirror(f.repo);
  assert.equal(await id(), before);
});

it('is undefined for a folder the default branch does not have', async () => {
  assert.equal(await id('.errand/missing'), undefined);
});
