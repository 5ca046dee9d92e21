import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BASE_IMAGE, ensurePodmanEnv, runPodman } from '../../src/sandbox/index.ts';
import { initRepo } from '../harness/git.ts';
import { containersOf, heldContainers } from '../harness/held-containers.ts';
import { isAlive } from '../harness/process-alive.ts';

// errand killed with SIGKILL in the middle of a task, with sandboxes held for the next
// ones, and started again: what the killed one made (env files, copies of errand's files,
// build contexts, spare conversation folders, containers, network helpers) is gone once
// the new one has started, and nothing of errand's was ever put in the system temp folder.
const CHILD = fileURLToPath(new URL('../harness/sandbox-crash-child.ts', import.meta.url));

interface Child {
  proc: ChildProcess;
  /** The gateway's pid on the host (in a pid namespace of its own, `proc` is unshare). */
  pid(): number;
  /** Resolves with the first event of that name (and matching `when`) from now on. */
  next(
    ev: string,
    when?: (e: Record<string, unknown>) => boolean,
  ): Promise<Record<string, unknown>>;
  send(m: Record<string, unknown>): void;
}

/** Every gateway started here: a failing run must not leave one running. */
const started: ChildProcess[] = [];

/**
 * Starts the gateway; with `pidOne`, as PID 1 of a new pid namespace, as errand in a
 * container is each time it starts.
 */
function startChild(env: NodeJS.ProcessEnv, args: string[], pidOne: boolean): Child {
  const argv = [process.execPath, CHILD, ...args];
  const [cmd, ...rest] = pidOne ? ['unshare', '--pid', '--fork', '--mount-proc', ...argv] : argv;
  const proc = spawn(cmd!, rest, { env, stdio: ['pipe', 'pipe', 'inherit'] });
  started.push(proc);
  const waiters: Array<{
    ev: string;
    when?: (e: Record<string, unknown>) => boolean;
    resolve: (e: Record<string, unknown>) => void;
  }> = [];
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    const e = JSON.parse(line) as Record<string, unknown>;
    for (const w of waiters.splice(0)) {
      if (w.ev === e.ev && (!w.when || w.when(e))) w.resolve(e);
      else waiters.push(w);
    }
  });
  const exited = new Promise<never>((_, reject) =>
    proc.once('exit', (code, signal) =>
      reject(new Error(`the gateway exited (${code ?? signal})`)),
    ),
  );
  exited.catch(() => undefined);
  return {
    proc,
    pid: () =>
      pidOne
        ? Number(readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8').trim())
        : proc.pid!,
    next: (ev, when) =>
      Promise.race([
        new Promise<Record<string, unknown>>((resolve) => waiters.push({ ev, when, resolve })),
        exited,
      ]),
    send: (m) => proc.stdin!.write(`${JSON.stringify(m)}\n`),
  };
}

/** Every path under `root`, relative to it, folders with a trailing slash. */
function listAll(root: string): string[] {
  if (!existsSync(root)) return [];
  const found: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      found.push(relative(root, p) + (e.isDirectory() ? '/' : ''));
      if (e.isDirectory()) walk(p);
    }
  };
  walk(root);
  return found;
}

async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The sandbox network helpers (relays) process `pid` started. */
function relaysOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .filter((n) => {
      try {
        const stat = readFileSync(`/proc/${n}/stat`, 'utf8');
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        return ppid === pid && readFileSync(`/proc/${n}/cmdline`, 'utf8').includes('relay.ts');
      } catch {
        return false;
      }
    })
    .map(Number);
}

let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'errand-killed-'));
});
/** The state folders of the runs here. */
const states: string[] = [];

after(async () => {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  // What a failed run left: the containers of its installation.
  for (const state of states) {
    const names = await containersOf(state);
    const env = await ensurePodmanEnv(state);
    if (names.length) await runPodman(['rm', '--force', '--time', '0', ...names], { env });
  }
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Kills errand with SIGKILL while a task runs in a held sandbox and another sandbox is
 * held on spare folders, starts it again on the same folders and checks what is left.
 */
async function killMidTaskAndRestart(pidOne: boolean): Promise<void> {
  const root = mkdtempSync(join(dir, 'run-'));
  const app = initRepo(join(root, 'app'), {
    'README.md': 'hello\n',
    '.errand/container/Containerfile': `FROM ${BASE_IMAGE}\n`,
  });
  const config = join(root, 'errand.yaml');
  writeFileSync(config, `repos:\n  app:\n    git_url: ${app}\n`);
  const state = join(root, 'state');
  states.push(state);
  const sandboxes = join(root, 'sandboxes');
  const temp = join(root, 'tmp');
  mkdirSync(temp);
  const env = { ...process.env, TMPDIR: temp };
  const args = [config, state, sandboxes];

  const first = startChild(env, args, pidOne);
  await first.next('ready');
  first.send({ thread: 'c1', text: 'echo one' });
  assert.equal((await first.next('replied')).text, 'one\n');
  const held = await heldContainers(state);
  assert.equal(held.length, 2, 'sandboxes are held for c1 and for a new conversation');
  // A follow-up killed while it runs in the sandbox held for it; the one held for the
  // next new conversation, on spare folders, waits.
  first.send({ thread: 'c1', text: 'touch /workspace/started && sleep 600' });
  const conversations = join(sandboxes, 'conversations', 'app');
  await until(
    () =>
      readdirSync(conversations).some((c) =>
        existsSync(join(conversations, c, 'workspace', 'started')),
      ),
    'the task runs',
  );
  const left = {
    spare: readdirSync(conversations).filter((n) => n.startsWith('.spare-')),
    files: readdirSync(join(sandboxes, 'tasks')),
    env: readdirSync(join(state, 'sandbox', 'env')),
  };
  assert.equal(left.spare.length, 1, "a spare conversation's folders are held");
  assert.ok(left.files.length >= 2 && left.env.length >= 1, JSON.stringify(left));
  const killed = first.pid();
  const relays = relaysOf(killed);
  assert.ok(relays.length >= 2, 'network helpers run for the held sandboxes');
  process.kill(killed, 'SIGKILL');
  await new Promise((r) => first.proc.once('exit', r));

  const second = startChild(env, args, pidOne);
  await second.next('ready');
  // Started: the clean-up of what the killed one left is done.
  assert.deepEqual(listAll(temp), [], 'nothing in the temp folder');
  assert.deepEqual(
    readdirSync(conversations).filter((n) => n.startsWith('.')),
    [],
    'no spare folder of a held sandbox',
  );
  assert.equal(readdirSync(conversations).length, 1, "the conversation's folders stay");
  assert.deepEqual(readdirSync(join(sandboxes, 'tasks')), [], "no copies of errand's files");
  assert.deepEqual(readdirSync(join(state, 'sandbox', 'env')), [], 'no env file');
  assert.deepEqual(listAll(join(state, 'build')), [], 'no build context');
  assert.deepEqual(await containersOf(state), [], 'no container');
  // A relay ends on its own once it sees errand gone: bounded, it has by now.
  await until(() => !relays.some(isAlive), 'the network helpers are gone').catch(() => undefined);
  assert.deepEqual(relays.filter(isAlive), [], 'no network helper');
  second.send({ close: true });
  await second.next('closed');
  assert.deepEqual(listAll(temp), [], 'nothing in the temp folder after a clean stop either');
}

describe('an errand killed mid-task', () => {
  it('leaves nothing in the temp folder and no held-sandbox folder once it has started again', () =>
    killMidTaskAndRestart(false));

  it(
    'leaves nothing once it has started again with the pid of the killed one (PID 1 of a container)',
    { skip: process.getuid?.() !== 0 && 'needs root (a new pid namespace)' },
    () => killMidTaskAndRestart(true),
  );
});
