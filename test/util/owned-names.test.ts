import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const OWNED = JSON.stringify(new URL('../../src/util/owned-names.ts', import.meta.url).href);

// One errand process in a new pid namespace, as errand in a container is: PID 1 each time
// it starts. It removes what processes that are gone left in the folder, then makes a
// folder of its own there, and lists what the folder holds.
const ERRAND = `
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
const { ownedName, removeLeftBehind } = await import(${OWNED});
const root = process.argv[1];
removeLeftBehind(root);
const mine = ownedName();
mkdirSync(join(root, mine));
console.log(JSON.stringify({ pid: process.pid, mine, all: readdirSync(root).sort() }));
`;

async function asPidOne(root: string): Promise<{ pid: number; mine: string; all: string[] }> {
  const { stdout } = await run('unshare', [
    '--pid',
    '--fork',
    '--mount-proc',
    process.execPath,
    '--input-type=module',
    '-e',
    ERRAND,
    root,
  ]);
  return JSON.parse(stdout);
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'errand-owned-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('names owned by one errand process', () => {
  it('removes what a crashed errand left when the next one got its pid (PID 1 of a container, restarted)', {
    skip: process.getuid?.() !== 0 && 'needs root (a new pid namespace)',
  }, async () => {
    const root = mkdtempSync(join(dir, 'pid1-'));
    const first = await asPidOne(root);
    assert.equal(first.pid, 1);
    const second = await asPidOne(root);
    assert.equal(second.pid, 1, 'the next errand has the same pid');
    assert.deepEqual(second.all, [second.mine], "the first one's folder is gone");
  });

  it('keeps what a live process made and removes it once that process is gone', async () => {
    const root = mkdtempSync(join(dir, 'live-'));
    const { ownedName, removeLeftBehind } = await import('../../src/util/owned-names.ts');
    const mine = ownedName();
    mkdirSync(join(root, mine));
    const { stdout } = await run(process.execPath, [
      '--input-type=module',
      '-e',
      `const { ownedName } = await import(${OWNED}); console.log(ownedName());`,
    ]);
    const gone = stdout.trim();
    mkdirSync(join(root, gone));
    // Made by an older errand: a pid, no start time; this one's runs, that one does not.
    mkdirSync(join(root, `${process.pid}-0a1b2c3d4e5f`));
    mkdirSync(join(root, '999999999-0a1b2c3d4e5f'));
    assert.deepEqual(removeLeftBehind(root).sort(), [gone, '999999999-0a1b2c3d4e5f'].sort());
    assert.deepEqual(readdirSync(root).sort(), [mine, `${process.pid}-0a1b2c3d4e5f`].sort());
  });
});
