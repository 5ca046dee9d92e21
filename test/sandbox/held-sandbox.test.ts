import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultCacheDir } from '../../src/config/index.ts';
import { BASE_IMAGE, PodmanSandbox } from '../../src/sandbox/index.ts';
import { heldContainers as listHeld } from '../harness/held-containers.ts';

let root: string;
let sandbox: PodmanSandbox;
before(async () => {
  root = mkdtempSync(join(tmpdir(), 'errand-held-'));
  sandbox = new PodmanSandbox({
    stateDir: join(root, 'state'),
    cacheDir: defaultCacheDir(),
    sandboxDir: join(root, 'sandboxes'),
    imageMaxAgeMs: 3_600_000,
  });
});
after(() => rmSync(root, { recursive: true, force: true }));

const held = (mounts: { source: string; target: string }[] = []) =>
  sandbox.hold({
    image: BASE_IMAGE,
    mounts,
    limits: { memory: '512m' },
    network: { kind: 'none' },
    maxLifetimeMs: 120_000,
  });

const heldContainers = () => listHeld(join(root, 'state'));

describe('a sandbox held for its task', () => {
  it('runs the command that comes later, with its environment, stdin and mounts, once', async () => {
    const dir = mkdtempSync(join(root, 'ws-'));
    const h = await held([{ source: dir, target: '/workspace' }]);
    // What the task puts in a mounted folder after the start is there: a clone, attachments.
    writeFileSync(join(dir, 'late.txt'), 'written after the start\n');
    assert.equal(h.ready, true);
    let out = '';
    const r = await h.run({
      command: [
        'sh',
        '-c',
        'printf "%s|" "$QUOTED" "$(pwd)" "$IS_SANDBOX" "$(cat)" && cat /workspace/late.txt',
      ],
      env: { QUOTED: `it's "quoted" $HOME \`x\`` },
      stdin: 'the prompt',
      timeoutMs: 60_000,
      onStdout: (c) => (out += c),
    });
    assert.equal(r.outcome, 'exited', r.stderrTail);
    assert.equal(r.exitCode, 0);
    assert.equal(
      out,
      `it's "quoted" $HOME \`x\`|/workspace|1|the prompt|written after the start\n`,
    );
    assert.equal(h.ready, false);
    await assert.rejects(h.run({ command: ['true'], env: {}, timeoutMs: 1000 }), /one task only/);
    assert.deepEqual(await heldContainers(), []);
  });

  it('keeps the task script where only its own container sees it, and removes it after', async () => {
    const h = await held();
    let out = '';
    const r = await h.run({
      command: [
        'sh',
        '-c',
        'ls /opt/errand/task; (echo x > /opt/errand/task/go.sh) 2>/dev/null || echo read-only',
      ],
      env: {},
      timeoutMs: 60_000,
      onStdout: (c) => (out += c),
    });
    assert.equal(r.outcome, 'exited', r.stderrTail);
    assert.deepEqual(out.trim().split('\n'), ['go.sh', 'read-only']);
    // Its folder and its copies of errand's files are gone with the container.
    assert.deepEqual(readdirSync(join(root, 'sandboxes', 'tasks')), []);
  });

  it('starts its time limit with the task, not when it was held', async () => {
    const h = await held();
    await new Promise((r) => setTimeout(r, 1500));
    const r = await h.run({ command: ['sleep', '30'], env: {}, timeoutMs: 1000 });
    assert.equal(r.outcome, 'timeout');
    assert.deepEqual(await heldContainers(), []);
  });

  it('runs nothing when discarded, and leaves no container', async () => {
    const h = await held();
    await h.discard();
    assert.equal(h.ready, false);
    assert.deepEqual(await heldContainers(), []);
  });

  it('is stopped by its task signal', async () => {
    const h = await held();
    const stop = new AbortController();
    const running = h.run({
      command: ['sleep', '30'],
      env: {},
      timeoutMs: 60_000,
      signal: stop.signal,
    });
    setTimeout(() => stop.abort(), 500);
    assert.equal((await running).outcome, 'stopped');
    assert.deepEqual(await heldContainers(), []);
  });
});
