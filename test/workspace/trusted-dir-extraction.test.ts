import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, it } from 'node:test';
import { MAX_TRUSTED_DIR_BYTES, MAX_TRUSTED_DIR_ENTRIES } from '../../src/workspace/index.ts';
import { commitBlobNames, GIT_ENV } from '../harness/git.ts';
import { commit, type Fixture, fixture, sh } from './origin-repo.ts';

const DIR = '.errand/container';
let f: Fixture;
let dest: string;
beforeEach(() => {
  f = fixture();
  dest = join(f.root, 'ctx');
});
afterEach(() => f.cleanup());

const extract = async () => {
  const at = await f.ws.refreshMirror(f.repo);
  return await f.ws.extractTrustedDir(f.repo, at, DIR, dest);
};

it('extracts the files of the folder with their content and executable bit', async () => {
  commit(f.origin, { [`${DIR}/files/setup.sh`]: '#!/bin/sh\necho hi\n' }, 'script');
  sh(f.origin, 'update-index', '--chmod=+x', `${DIR}/files/setup.sh`);
  sh(f.origin, 'commit', '-q', '-m', 'executable');
  assert.equal(await extract(), true);
  assert.equal(readFileSync(join(dest, 'Containerfile'), 'utf8'), 'FROM scratch\n');
  assert.equal(readFileSync(join(dest, 'files', 'setup.sh'), 'utf8'), '#!/bin/sh\necho hi\n');
  assert.ok(statSync(join(dest, 'files', 'setup.sh')).mode & 0o100);
  assert.equal(statSync(join(dest, 'Containerfile')).mode & 0o111, 0);
  assert.equal(existsSync(join(dest, 'network-allowlist.yaml')), false, 'only the folder');
});

it('returns false when the default branch has no such folder', async () => {
  const at = await f.ws.refreshMirror(f.repo);
  assert.equal(await f.ws.extractTrustedDir(f.repo, at, '.errand/missing', dest), false);
  assert.equal(existsSync(dest), false);
});

it('keeps a symlink that points inside the folder', async () => {
  commit(f.origin, { [`${DIR}/files/a.sh`]: '#!/bin/sh\n' }, 'files');
  symlinkSync('files/a.sh', join(f.origin, DIR, 'link.sh'));
  commit(f.origin, {}, 'inner link');
  assert.equal(await extract(), true);
  assert.ok(lstatSync(join(dest, 'link.sh')).isSymbolicLink());
  assert.equal(readlinkSync(join(dest, 'link.sh')), 'files/a.sh');
});

const escaping: [string, [string, string][]][] = [
  ['a relative link to a file above the folder', [['escape', '../../README.md']]],
  ['an absolute link', [['escape', '/etc/passwd']]],
  ['a link to the folder parent', [['up', '..']]],
  [
    'a link that escapes through another link inside the folder',
    [
      ['sub/up', '..'],
      ['escape', 'sub/up/..'],
    ],
  ],
];
for (const [name, links] of escaping) {
  it(`refuses ${name} and writes nothing`, async () => {
    commit(f.origin, { [`${DIR}/sub/keep.txt`]: 'x' }, 'sub');
    for (const [at, target] of links) symlinkSync(target, join(f.origin, DIR, at));
    commit(f.origin, {}, 'escaping link');
    await assert.rejects(extract(), {
      code: 'trusted_file_invalid',
      message: /a symlink pointing outside \.errand\/container is not allowed/,
    });
    assert.equal(existsSync(dest), false);
  });
}

it('refuses a folder path with ..', async () => {
  const at = await f.ws.refreshMirror(f.repo);
  await assert.rejects(f.ws.extractTrustedDir(f.repo, at, '.errand/../..', dest), {
    code: 'usage',
  });
});

it('refuses a submodule in the folder, naming it', async () => {
  const sub = sh(f.origin, 'rev-parse', 'HEAD');
  sh(f.origin, 'update-index', '--add', '--cacheinfo', `160000,${sub},${DIR}/vendor`);
  sh(f.origin, 'commit', '-q', '-m', 'submodule');
  await assert.rejects(extract(), {
    code: 'trusted_file_invalid',
    message: /\.errand\/container\/vendor: submodules are not allowed/,
  });
});

it('does not write through a link already in the destination', async () => {
  const at = await f.ws.refreshMirror(f.repo);
  const victim = join(f.root, 'victim');
  mkdirSync(dest);
  symlinkSync(victim, join(dest, 'Containerfile'));
  await assert.rejects(f.ws.extractTrustedDir(f.repo, at, DIR, dest), { code: 'EEXIST' });
  assert.equal(existsSync(victim), false);
});

/** A blob of `bytes` zeros in the origin. */
function blobOf(bytes: number): string {
  return execFileSync('git', ['hash-object', '-w', '--stdin'], {
    cwd: f.origin,
    env: GIT_ENV,
    input: Buffer.alloc(bytes),
    encoding: 'utf8',
  }).trim();
}

const names = (n: number) => Array.from({ length: n }, (_, i) => `${DIR}/f${i}`);

it('refuses a folder of more entries than the limit before writing any, naming the folder and the limit', async () => {
  commitBlobNames(f.origin, blobOf(1), names(MAX_TRUSTED_DIR_ENTRIES), 'crowd');
  await assert.rejects(extract(), {
    code: 'trusted_file_invalid',
    message: /^\.errand\/container has more than 1000 entries/,
  });
  assert.equal(existsSync(dest), false);
});

it('refuses a folder whose files add up past the limit before reading any, naming the folder and the limit', async () => {
  const mib = 1024 * 1024;
  commitBlobNames(f.origin, blobOf(mib), names(MAX_TRUSTED_DIR_BYTES / mib), 'heavy');
  await assert.rejects(extract(), {
    code: 'trusted_file_invalid',
    message: /^\.errand\/container holds more than 100 MiB of files/,
  });
  assert.equal(existsSync(dest), false);
});

it('refuses a folder of 70,000 long names from the first 16 MiB of its listing', async () => {
  const long = Array.from({ length: 70_000 }, (_, i) => `${DIR}/${'n'.repeat(240)}${i}`);
  commitBlobNames(f.origin, blobOf(1), long, 'a huge folder');
  await assert.rejects(extract(), {
    code: 'trusted_file_invalid',
    message: /^\.errand\/container: its listing passes 16 MiB/,
  });
  assert.equal(existsSync(dest), false);
});
