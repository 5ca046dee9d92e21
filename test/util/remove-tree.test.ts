import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { removeTree } from '../../src/util/remove-tree.ts';

// The walk's own edges, as whatever user runs the tests. What only an unprivileged user
// meets (folders it may not enter, a sub-uid's files) is in test/sandbox/rootless.test.ts.
let dir: string;
let host: string;

describe('removeTree', () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'errand-remove-tree-'));
    host = join(dir, 'host');
    mkdirSync(host);
    writeFileSync(join(host, 'keep.txt'), 'the host file');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('removes a link and not what it points to, at the top and anywhere below', async () => {
    const tree = join(dir, 'links');
    mkdirSync(join(tree, 'a', 'b'), { recursive: true });
    symlinkSync(host, join(tree, 'a', 'to-folder'));
    symlinkSync(join(host, 'keep.txt'), join(tree, 'a', 'b', 'to-file'));
    symlinkSync(host, join(dir, 'top-link'));
    await removeTree(tree);
    await removeTree(join(dir, 'top-link'));
    assert.equal(existsSync(tree), false);
    assert.equal(existsSync(join(dir, 'top-link')), false);
    assert.deepEqual(readdirSync(host), ['keep.txt']);
    assert.equal(readFileSync(join(host, 'keep.txt'), 'utf8'), 'the host file');
  });

  it('removes a tree deeper than PATH_MAX, opening the folders above again on the way up', async () => {
    const tree = join(dir, 'deep');
    mkdirSync(tree);
    // 1,000 levels of 8 bytes: 8 KB of path, past PATH_MAX (4 KB), and far past the
    // 64 folders the walk keeps open.
    const cwd = process.cwd();
    try {
      process.chdir(tree);
      for (let i = 0; i < 1000; i++) {
        mkdirSync('level-7');
        process.chdir('level-7');
      }
      writeFileSync('bottom', 'x');
      symlinkSync(host, 'link');
      chmodSync('.', 0o500);
    } finally {
      process.chdir(cwd);
    }
    await removeTree(tree);
    assert.equal(existsSync(tree), false);
    assert.deepEqual(readdirSync(host), ['keep.txt']);
  });

  it('removes names that are not UTF-8', async () => {
    const tree = join(dir, 'bytes');
    mkdirSync(tree);
    const name = Buffer.from([0xff, 0xfe, 0x2d, 0x80]);
    const inTree = (...parts: Buffer[]) =>
      Buffer.concat([
        Buffer.from(`${tree}/`),
        ...parts.flatMap((p, i) => (i ? [Buffer.from('/'), p] : [p])),
      ]);
    mkdirSync(inTree(name));
    writeFileSync(inTree(name, name), 'x');
    await removeTree(tree);
    assert.equal(existsSync(tree), false);
  });

  it('does nothing when nothing is there', async () => {
    await removeTree(join(dir, 'never-made'));
  });
});
