import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PID_FILE } from '../../src/cli/instance-lock.ts';
import { BASE_IMAGE, ensurePodmanEnv, runPodman } from '../../src/sandbox/index.ts';
import { cli, freePort, MAIN, startErrand, tempHome } from '../harness/cli.ts';

// Two `errand start` on one state folder: the second must leave the first's containers,
// tasks and port alone, and say who holds the folder.

let home: string;
let env: NodeJS.ProcessEnv;
let state: string;
let configPath: string;
let port: number;
/** A git server that accepts connections and never answers: a task's fetch waits there. */
let hangingGit: Server;
const held: Socket[] = [];
/** Hangs up on every connection, held or new: each fetch fails at once. */
function releaseGit(): void {
  released = true;
  for (const s of held) s.destroy();
}
let released = false;

before(async () => {
  ({ home, env } = tempHome());
  env = { ...env, TEST_API_KEY: 'sk-ant-test-0123456789' };
  state = join(home, '.local', 'state', 'errand');
  hangingGit = createServer((s) => {
    s.on('error', () => undefined);
    if (released) s.destroy();
    else held.push(s);
  });
  await new Promise<void>((r) => hangingGit.listen(0, '127.0.0.1', r));
  const gitPort = (hangingGit.address() as { port: number }).port;
  port = await freePort();
  configPath = join(home, 'errand.yaml');
  writeFileSync(
    configPath,
    `execution:\n  shutdown_grace_seconds: 1\ndashboard:\n  port: ${port}\nrepos:\n  one:\n    git_url: http://127.0.0.1:${gitPort}/one.git\n    agent:\n      api_key: !env TEST_API_KEY\n`,
  );
});
after(async () => {
  releaseGit();
  await new Promise((r) => hangingGit.close(r));
  rmSync(home, { recursive: true, force: true });
});

const api = async (path: string, init?: RequestInit) => {
  const token = readFileSync(join(state, 'control-token'), 'utf8').trim();
  const r = await fetch(`http://127.0.0.1:${port}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};

async function until<T>(what: string, get: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const v = await get();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** `errand start`, once its API answers (a SIGTERM sooner may find no handler yet). */
async function start() {
  const errand = await startErrand(['--config', configPath], { env, cwd: home });
  await until('the API to answer', async () =>
    (await fetch(`http://127.0.0.1:${port}/api/health`).catch(() => undefined))?.ok
      ? true
      : undefined,
  );
  return errand;
}

describe('one errand per state folder', () => {
  it("a second errand start exits 1 naming the running PID and the state folder, and leaves the first's containers and running task alone", async () => {
    const first = await start();
    const podmanEnv = await ensurePodmanEnv(state);
    // A container of the first errand, labelled as its driver labels them (its instance
    // is named after the state folder): a start that took the folder would remove it.
    const instance = `gw-${createHash('sha256').update(state).digest('hex').slice(0, 12)}`;
    const container = `errand-${instance}-planted-${process.pid}`;
    try {
      const submitted = await api('/api/repos/one/tasks', {
        method: 'POST',
        body: JSON.stringify({ text: 'wait for the fetch' }),
      });
      assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
      const taskId = await until('the task to run (its fetch hanging)', async () => {
        const { body } = await api('/api/tasks');
        const running = (body.running ?? []) as Array<{ id: string }>;
        return held.length > 0 ? running[0]?.id : undefined;
      });
      const made = await runPodman(
        [
          'run',
          '-d',
          '--name',
          container,
          '--label',
          'errand.managed=true',
          '--label',
          `errand.instance=${instance}`,
          BASE_IMAGE,
          'sleep',
          '600',
        ],
        { env: podmanEnv },
      );
      assert.equal(made.code, 0, made.stderr);

      const second = await cli(['start', '--config', configPath], { env, cwd: home });
      assert.equal(second.code, 1, second.stderr);
      // Its last line; a warning about the config file's mode may come before it.
      assert.equal(
        second.stderr.trim().split('\n').at(-1),
        `errand: the state folder ${state} is in use by a running errand (PID ${first.child.pid}). Stop that one first (systemctl --user stop errand, or kill ${first.child.pid}), or give this one another execution.state_dir.`,
      );

      const exists = await runPodman(['container', 'exists', container], { env: podmanEnv });
      assert.equal(exists.code, 0, "the first errand's container is still there");
      const stateOf = async () =>
        ((await api(`/api/tasks/${taskId}`)).body.task as { state: string; outcome?: string })
          .state;
      assert.equal(await stateOf(), 'running', 'the task was not marked interrupted');
      // The first errand carries on: once its fetch fails, the task ends as failed.
      releaseGit();
      await until('the task to end', async () =>
        (await stateOf()) === 'running' ? undefined : true,
      );
      assert.equal(await stateOf(), 'failed');
    } finally {
      releaseGit();
      await runPodman(['rm', '--force', '--time', '0', container], { env: podmanEnv });
      assert.equal(await first.stop(), 0, first.stderr());
    }
    assert.equal(existsSync(join(state, PID_FILE)), false, 'the PID file goes on a clean exit');
  });

  it('runs errand sandbox run beside a running errand start on the same state folder', async () => {
    const first = await start();
    try {
      const r = await cli(['sandbox', 'run', '--image', BASE_IMAGE, '--', 'echo', 'beside'], {
        env,
        cwd: home,
        timeoutMs: 120_000,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'beside\n');
    } finally {
      assert.equal(await first.stop(), 0, first.stderr());
    }
  });

  it('starts on a state folder an errand killed with SIGKILL left, and over a PID file naming another process', async () => {
    const killed = await start();
    killed.child.kill('SIGKILL');
    await new Promise((r) => killed.child.once('exit', r));
    assert.equal(
      JSON.parse(readFileSync(join(state, PID_FILE), 'utf8')).pid,
      killed.child.pid,
      'the killed errand left its PID file',
    );
    const next = await start();
    assert.equal(JSON.parse(readFileSync(join(state, PID_FILE), 'utf8')).pid, next.child.pid);
    assert.equal(await next.stop(), 0, next.stderr());

    // PID 1 exists, but started at another time than the file says.
    writeFileSync(join(state, PID_FILE), `${JSON.stringify({ pid: 1, start: '1' })}\n`);
    const again = await start();
    assert.equal(JSON.parse(readFileSync(join(state, PID_FILE), 'utf8')).pid, again.child.pid);
    assert.equal(await again.stop(), 0, again.stderr());
  });

  it('of two errand starts at once exactly one runs, and the other names its PID', async () => {
    const spawnStart = () =>
      spawn(process.execPath, [MAIN, 'start', '--config', configPath], {
        env,
        cwd: home,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    const children = [spawnStart(), spawnStart()];
    const outcome = (child: ChildProcess) =>
      new Promise<{ child: ChildProcess; stderr: string; code?: number | null }>((resolve) => {
        let stderr = '';
        child.stderr!.on('data', (c) => {
          stderr += c;
          if (/is running on/.test(stderr)) resolve({ child, stderr });
        });
        child.once('exit', (code) => resolve({ child, stderr, code }));
      });
    const [a, b] = await Promise.all(children.map(outcome));
    try {
      const running = [a!, b!].filter((o) => o.code === undefined);
      const refused = [a!, b!].filter((o) => o.code !== undefined);
      assert.equal(running.length, 1, `${a!.stderr}\n---\n${b!.stderr}`);
      assert.equal(refused[0]!.code, 1, refused[0]!.stderr);
      assert.match(
        refused[0]!.stderr,
        new RegExp(`is in use by a running errand \\(PID ${running[0]!.child.pid}\\)`),
      );
    } finally {
      for (const c of children) {
        if (c.exitCode === null) {
          const exited = new Promise((r) => c.once('exit', r));
          c.kill('SIGTERM');
          await exited;
        }
      }
    }
  });
});
