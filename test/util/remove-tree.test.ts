import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
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
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { removeTree } from '../../src/util/remove-tree.ts';

// The walk's own edges, as whatever user runs the tests. What only an unprivileged user
// meets (folders it may not enter, a sub-uid's files) is in test/sandbox/rootless.test.ts.
let dir: string;
let host: string;

const LOCKED_USER = 'errand-ci';
/** A Node that user may run (as in test/sandbox/rootless.test.ts). */
const USER_NODE = '/opt/errand-node/node';
const REMOVE_TREE_TS = resolve(import.meta.dirname, '../../src/util/remove-tree.ts');

function lockedSkip(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to make folders of another uid';
  if (spawnSync('id', [LOCKED_USER]).status !== 0)
    return `no user ${LOCKED_USER} (create it with: useradd -m ${LOCKED_USER}; .ci/run does)`;
  if (spawnSync('runuser', ['-u', LOCKED_USER, '--', USER_NODE, '--version']).status !== 0)
    return `${USER_NODE} does not run as ${LOCKED_USER}`;
  return undefined;
}

function uidOf(user: string): number {
  return Number(spawnSync('id', ['-u', user], { encoding: 'utf8' }).stdout.trim());
}

/** Runs removeTree on $TREE, counting how often the folder itself is listed (opendir). */
const countListings = `
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
const tree = fs.statSync(process.env.TREE);
let listings = 0;
const opendir = fs.opendirSync;
fs.opendirSync = (path, o) => {
  const st = fs.statSync(path);
  if (st.ino === tree.ino && st.dev === tree.dev) listings++;
  return opendir(path, o);
};
syncBuiltinESMExports();
const { removeTree } = await import(process.env.REMOVE_TREE);
let left = 0;
try { await removeTree(process.env.TREE); } catch (e) { left = e.left; }
console.log(JSON.stringify({ listings, left }));
`;

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

  it('lists a folder once, however many of its entries stay (folders errand’s user may not enter)', {
    skip: lockedSkip(),
  }, async () => {
    // Another uid's folders, closed (0000) and not empty, as a rootless agent can leave
    // them by the thousand: errand's user can neither enter nor remove them.
    const top = mkdtempSync(join(tmpdir(), 'errand-locked-'));
    try {
      chmodSync(top, 0o755);
      const tree = join(top, 'tree');
      mkdirSync(tree);
      chownSync(tree, uidOf(LOCKED_USER), 0);
      for (let i = 0; i < 2500; i++) {
        const d = join(tree, `d${i}`);
        mkdirSync(d);
        writeFileSync(join(d, 'f'), '');
        chmodSync(d, 0);
      }
      const r = spawnSync(
        'runuser',
        ['-u', LOCKED_USER, '--', USER_NODE, '--input-type=module', '-e', countListings],
        { encoding: 'utf8', env: { ...process.env, TREE: tree, REMOVE_TREE: REMOVE_TREE_TS } },
      );
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { listings: number; left: number };
      assert.equal(out.left, 2501, 'they stay, and the folder they are in');
      assert.equal(out.listings, 1, 'the folder holding them is listed once');
      assert.equal(readdirSync(tree).length, 2500);
    } finally {
      rmSync(top, { recursive: true, force: true });
    }
  });

  it('does nothing when nothing is there', async () => {
    await removeTree(join(dir, 'never-made'));
  });
});
