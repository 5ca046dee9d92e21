import assert from 'node:assert/strict';
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
