import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { isAlive } from '../harness/process-alive.ts';

// A process that opens a sandbox network namespace, says the relay's pid, and waits.
const OPENER = `
import { ensurePodmanEnv } from ${JSON.stringify(new URL('../../src/sandbox/index.ts', import.meta.url).href)};
import { startSandboxNetns } from ${JSON.stringify(new URL('../../src/proxy/index.ts', import.meta.url).href)};
const dir = process.argv[1];
const ns = await startSandboxNetns(await ensurePodmanEnv(dir));
console.log(ns.path.split('/')[2]);
setInterval(() => {}, 1000);
`;

it('the relay holding a sandbox network exits when errand is killed with SIGKILL', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'errand-relay-'));
  try {
    const child = spawn(process.execPath, ['--input-type=module', '-e', OPENER, dir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.stdout.once('data', (b: Buffer) => resolve(Number(b.toString().trim())));
      child.once('exit', (code) => reject(new Error(`opener exited ${code}`)));
    });
    assert.ok(isAlive(pid), 'the relay runs');
    child.kill('SIGKILL');
    const deadline = Date.now() + 10_000;
    while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(isAlive(pid), false, 'the relay is gone');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
