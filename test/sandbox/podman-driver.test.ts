import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultCacheDir } from '../../src/config/index.ts';
import {
  BASE_IMAGE,
  DEFAULT_CLAUDE_CODE_VERSION,
  ensurePodmanEnv,
  PodmanSandbox,
  runPodman,
} from '../../src/sandbox/index.ts';

// The CLI binary is large: keep it in the user's cache so a machine downloads it once.
const CACHE = defaultCacheDir();
let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'errand-driver-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

function driver(name: string): PodmanSandbox {
  return new PodmanSandbox({
    stateDir: join(root, name),
    cacheDir: CACHE,
    sandboxDir: join(root, `${name}-sandboxes`),
    imageMaxAgeMs: 3_600_000,
  });
}

const base = {
  image: BASE_IMAGE,
  mounts: [],
  env: {},
  limits: { memory: '512m' },
  network: { kind: 'none' as const },
  timeoutMs: 120_000,
};

describe('the podman sandbox driver', () => {
  it('provides the Claude Code CLI read-only at a fixed path, and the sandbox environment', async () => {
    let out = '';
    const r = await driver('a').run({
      ...base,
      taskId: 't_cli',
      claudeCodeVersion: DEFAULT_CLAUDE_CODE_VERSION,
      command: [
        'sh',
        '-c',
        'claude --version; echo "IS_SANDBOX=$IS_SANDBOX"; command -v claude; (echo x > /opt/errand/bin/claude) 2>/dev/null || echo read-only',
      ],
      onStdout: (c) => (out += c),
    });
    assert.equal(r.outcome, 'exited', r.stderrTail);
    const lines = out.trim().split('\n');
    assert.match(lines[0]!, new RegExp(DEFAULT_CLAUDE_CODE_VERSION.replaceAll('.', '\\.')));
    assert.deepEqual(lines.slice(1), ['IS_SANDBOX=1', '/opt/errand/bin/claude', 'read-only']);
  });

  it("removes the containers an earlier, killed errand left, and only its own installation's", async () => {
    const mine = driver('mine');
    const other = driver('other');
    const script = `
      const { PodmanSandbox, BASE_IMAGE } = await import(${JSON.stringify(new URL('../../src/sandbox/index.ts', import.meta.url).href)});
      const d = new PodmanSandbox({ stateDir: process.argv[1], cacheDir: '/nonexistent', sandboxDir: process.argv[1] + '-sandboxes', imageMaxAgeMs: 1 });
      process.stdout.write('starting\\n');
      await d.run({ taskId: process.argv[2], image: BASE_IMAGE, command: ['sleep', '300'], mounts: [], env: {}, limits: {}, network: { kind: 'none' }, timeoutMs: 300000 });`;
    const start = (stateDir: string, task: string) =>
      spawn(process.execPath, ['--input-type=module', '-e', script, stateDir, task], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
    const a = start(join(root, 'mine'), 't_orphan');
    const b = start(join(root, 'other'), 't_neighbour');
    const env = await ensurePodmanEnv(join(root, 'mine'));
    const running = async (task: string) =>
      (
        await runPodman(['ps', '--filter', `label=errand.task=${task}`, '--format', '{{.Names}}'], {
          env,
        })
      ).stdout.trim() !== '';
    for (
      let i = 0;
      i < 200 && !((await running('t_orphan')) && (await running('t_neighbour')));
      i++
    )
      await new Promise((r) => setTimeout(r, 100));
    a.kill('SIGKILL');
    b.kill('SIGKILL');
    assert.ok(await running('t_orphan'), 'the killed errand left its container running');
    const removed = await mine.removeOrphans();
    assert.equal(removed.length, 1);
    assert.equal(await running('t_orphan'), false);
    assert.ok(await running('t_neighbour'), "another installation's container is not touched");
    assert.equal((await other.removeOrphans()).length, 1);
  });
});
