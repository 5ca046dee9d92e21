import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BASE_IMAGE, ensurePodmanEnv, runPodman } from '../../src/sandbox/index.ts';
import { cli, MAIN, tempHome } from '../harness/cli.ts';
import { git } from '../harness/git.ts';

let home: string;
let env: NodeJS.ProcessEnv;
let project: string;
const g = (...a: string[]) => git(project, ...a);

before(() => {
  ({ home, env } = tempHome());
  project = join(home, 'project');
  mkdirSync(join(project, '.errand', 'container'), { recursive: true });
  writeFileSync(
    join(project, '.errand', 'container', 'Containerfile'),
    `FROM ${BASE_IMAGE}\nRUN echo from-default-branch > /marker\n`,
  );
  writeFileSync(
    join(project, '.errand', 'sandbox.yaml'),
    'limits:\n  memory: 128m\nenv:\n  FROM_SANDBOX_YAML: "yes"\n',
  );
  g('init', '-q', '-b', 'main');
  g('add', '-A');
  g('commit', '-q', '-m', 'init');
});
after(() => rmSync(home, { recursive: true, force: true }));

const run = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
  cli(['sandbox', 'run', ...args], {
    env: { ...env, ...extraEnv },
    cwd: project,
    timeoutMs: 180_000,
  });

describe('errand sandbox run', () => {
  it("passes the command's output through unchanged and exits with its status", async () => {
    const r = await run(['--', 'sh', '-c', 'printf "out\\n"; printf "err\\n" >&2; exit 3']);
    assert.equal(r.code, 3);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
  });

  it('mounts the current folder read-write at /workspace and runs there', async () => {
    const r = await run(['--', 'sh', '-c', 'pwd; echo made-inside > result.txt']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '/workspace\n');
    assert.equal(readFileSync(join(project, 'result.txt'), 'utf8'), 'made-inside\n');
    rmSync(join(project, 'result.txt'));
  });

  it('builds the image and reads settings from the default branch, not from uncommitted or branch changes', async () => {
    writeFileSync(
      join(project, '.errand', 'container', 'Containerfile'),
      `FROM ${BASE_IMAGE}\nRUN echo from-working-tree > /marker\n`,
    );
    writeFileSync(
      join(project, '.errand', 'sandbox.yaml'),
      'env:\n  FROM_SANDBOX_YAML: "tampered"\n',
    );
    try {
      const r = await run(['--', 'sh', '-c', 'cat /marker; echo "$FROM_SANDBOX_YAML"']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'from-default-branch\nyes\n');
    } finally {
      g('checkout', '--', '.errand');
    }
  });

  it('applies --env, --mount and the memory limit of .errand/sandbox.yaml', async () => {
    const extra = join(home, 'extra');
    mkdirSync(extra, { recursive: true });
    writeFileSync(join(extra, 'data.txt'), 'shared');
    const r = await run(
      [
        '--env',
        'A=1',
        '--env',
        'FROM_HOST',
        '--mount',
        `${extra}:/data:ro`,
        '--',
        'sh',
        '-c',
        'echo "$A $FROM_HOST"; cat /data/data.txt; echo; touch /data/x 2>/dev/null || echo read-only; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max',
      ],
      { FROM_HOST: 'copied' },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      '1 copied',
      'shared',
      'read-only',
      String(128 * 1024 * 1024),
    ]);
  });

  it('exits 124 when the command runs past --timeout', async () => {
    const r = await run(['--timeout', '1', '--', 'sleep', '30']);
    assert.equal(r.code, 124);
    assert.match(r.stderr, /longer than 1 s/);
  });

  it('exits 125 with a one-line reason when the sandbox cannot be set up', async () => {
    for (const args of [
      ['--image', 'localhost/errand-missing:1', '--', 'true'],
      ['--bogus', '--', 'true'],
      ['--env', 'NOT_SET_HERE', '--', 'true'],
      ['--mount', 'relative-missing:/x', '--', 'true'],
      ['--allowlist', 'a.yaml', '--', 'true'],
    ]) {
      const r = await run(args);
      assert.equal(r.code, 125, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(r.stdout, '');
    }
  });

  it('leaves no container behind, even after the CLI itself was killed', async () => {
    const podmanEnv = await ensurePodmanEnv(join(home, '.local', 'state', 'errand'));
    const child = spawn(
      process.execPath,
      [MAIN, 'sandbox', 'run', '--timeout', '3', '--', 'sh', '-c', 'echo started; sleep 2'],
      { cwd: project, env, stdio: ['ignore', 'pipe', 'ignore'] },
    );
    await new Promise<void>((resolve) => child.stdout.on('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 3000));
    const r = await run(['--', 'true']);
    assert.equal(r.code, 0);
    // Other test files run `errand sandbox run` at the same time: only containers that
    // mount this test's project are its own.
    const all = await runPodman(
      ['ps', '--all', '--filter', 'label=errand.instance=cli', '--format', '{{.ID}}'],
      { env: podmanEnv },
    );
    const ours: string[] = [];
    for (const id of all.stdout.split('\n').filter(Boolean)) {
      const mounts = await runPodman(
        ['inspect', '--format', '{{range .Mounts}}{{.Source}} {{end}}', id],
        { env: podmanEnv },
      );
      if (mounts.stdout.split(' ').includes(project)) ours.push(id);
    }
    assert.deepEqual(ours, []);
  });
});

describe('errand sandbox image', () => {
  it('prints a stable hash, saves the image to a folder and loads it back', async () => {
    const a = await cli(['sandbox', 'image', 'hash'], { env, cwd: project });
    const b = await cli(['sandbox', 'image', 'hash'], { env, cwd: project });
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stdout.trim(), /^[0-9a-f]{64}$/);
    assert.equal(a.stdout, b.stdout);
    const dir = join(home, 'image-cache');
    const saved = await cli(['sandbox', 'image', 'save', dir], {
      env,
      cwd: project,
      timeoutMs: 180_000,
    });
    assert.equal(saved.code, 0, saved.stderr);
    assert.deepEqual(readdirSync(dir), [`${a.stdout.trim().slice(0, 16)}.tar`]);
    const loaded = await cli(['sandbox', 'image', 'load', dir], {
      env,
      cwd: project,
      timeoutMs: 180_000,
    });
    assert.equal(loaded.code, 0, loaded.stderr);
    assert.match(loaded.stdout, /loaded 1 image/);
    assert.ok(existsSync(join(dir, `${a.stdout.trim().slice(0, 16)}.tar`)));
  });
});
