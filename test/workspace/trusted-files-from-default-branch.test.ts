import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, it } from 'node:test';
import { MAX_TRUSTED_FILE_BYTES } from '../../src/workspace/index.ts';
import { commit, type Fixture, fixture, sh } from './origin-repo.ts';

const ALLOWLIST = '.errand/network-allowlist.yaml';
let f: Fixture;
beforeEach(async () => {
  f = fixture('trunk');
  await f.ws.refreshMirror(f.repo);
});
afterEach(() => f.cleanup());

// Reads what the mirror's default branch holds now (each test refreshes it first).
const read = async (path: string) =>
  (await f.ws.readTrustedFile(f.repo, await f.ws.mirrorState(f.repo), path))?.toString();

it('reads a file of the default branch', async () => {
  assert.equal(await read(ALLOWLIST), 'allow: []\n');
  assert.equal(await read('.errand/container/Containerfile'), 'FROM scratch\n');
});

it('returns undefined for a file the default branch does not have', async () => {
  assert.equal(await read('.errand/missing.yaml'), undefined);
  assert.equal(await read('no/such/folder/file'), undefined);
});

it('ignores a change left uncommitted in a conversation workspace', async () => {
  const { dirs } = await f.ws.prepareConversation(f.repo, 'c_agent');
  writeFileSync(join(dirs.workspace, ALLOWLIST), 'allow: [{ host: evil.example }]\n');
  assert.equal(await read(ALLOWLIST), 'allow: []\n');
});

it('ignores a change committed in a conversation workspace', async () => {
  const { dirs } = await f.ws.prepareConversation(f.repo, 'c_agent');
  commit(dirs.workspace, { [ALLOWLIST]: 'allow: [{ host: evil.example }]\n' }, 'loosen');
  await f.ws.refreshMirror(f.repo);
  assert.equal(await read(ALLOWLIST), 'allow: []\n');
});

it('ignores a change pushed to another branch', async () => {
  sh(f.origin, 'checkout', '-q', '-b', 'agent-branch');
  commit(f.origin, { [ALLOWLIST]: 'allow: [{ host: evil.example }]\n' }, 'loosen on a branch');
  sh(f.origin, 'checkout', '-q', 'trunk');
  await f.ws.refreshMirror(f.repo);
  assert.match(sh(f.ws.mirrorPath('app'), 'branch', '--list'), /agent-branch/);
  assert.equal(await read(ALLOWLIST), 'allow: []\n');
});

it('reads the new content once a change is merged into the default branch', async () => {
  commit(f.origin, { [ALLOWLIST]: 'allow: [{ host: api.example }]\n' }, 'merged');
  await f.ws.refreshMirror(f.repo);
  assert.equal(await read(ALLOWLIST), 'allow: [{ host: api.example }]\n');
});

it('refuses a symlink in place of a trusted file, naming the path', async () => {
  mkdirSync(join(f.origin, 'docs'));
  writeFileSync(join(f.origin, 'docs', 'open.yaml'), 'allow: [{ host: "*" }]\n');
  symlinkSync('../docs/open.yaml', join(f.origin, '.errand', 'sandbox-link.yaml'));
  commit(f.origin, {}, 'link');
  await f.ws.refreshMirror(f.repo);
  await assert.rejects(read('.errand/sandbox-link.yaml'), {
    code: 'trusted_file_invalid',
    message: /\.errand\/sandbox-link\.yaml must be a file, not a symlink/,
  });
});

it('refuses a trusted file over 1 MiB, naming the path, its size and the limit', async () => {
  commit(f.origin, { [ALLOWLIST]: '#'.repeat(MAX_TRUSTED_FILE_BYTES + 1) }, 'huge');
  await f.ws.refreshMirror(f.repo);
  await assert.rejects(read(ALLOWLIST), {
    code: 'trusted_file_invalid',
    message:
      /^\.errand\/network-allowlist\.yaml is 1048577 bytes, more than the 1 MiB \(1048576 bytes\) errand reads/,
  });
});

it('reads a trusted file of exactly 1 MiB', async () => {
  commit(f.origin, { [ALLOWLIST]: '#'.repeat(MAX_TRUSTED_FILE_BYTES) }, 'at the limit');
  await f.ws.refreshMirror(f.repo);
  assert.equal((await read(ALLOWLIST))?.length, MAX_TRUSTED_FILE_BYTES);
});

it('refuses a folder in place of a trusted file, naming the path', async () => {
  await assert.rejects(read('.errand/container'), {
    code: 'trusted_file_invalid',
    message: /\.errand\/container must be a file/,
  });
});

for (const path of ['../outside', '.errand/../../x', '/etc/passwd', '', '.']) {
  it(`refuses the path ${JSON.stringify(path)}`, async () => {
    await assert.rejects(read(path), { code: 'usage', message: /invalid repository path/ });
  });
}

it('reads a name with glob characters literally', async () => {
  commit(f.origin, { '.errand/[a].yaml': 'literal\n' }, 'odd name');
  await f.ws.refreshMirror(f.repo);
  assert.equal(await read('.errand/[a].yaml'), 'literal\n');
  assert.equal(await read('.errand/a.yaml'), undefined);
  assert.equal(await read('.errand/*.yaml'), undefined);
});
