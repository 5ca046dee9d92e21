/**
 * Drives test/harness/gateway-child.ts: a real gateway in its own process, killed with
 * SIGKILL and started again on the same state folder.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Delivery } from '../../src/domain/index.ts';
import { startJsonChild } from './json-child.ts';

const CHILD = fileURLToPath(new URL('./gateway-child.ts', import.meta.url));
const WAIT_MS = 15_000;

export interface GatewayProcess {
  proc: ChildProcess;
  events: Array<Record<string, unknown>>;
  /** Resolves once the process has exited (killed or crashed by its own hand). */
  exited: Promise<void>;
  waitFor(
    pred: (e: Record<string, unknown>) => boolean,
    what: string,
  ): Promise<Record<string, unknown>>;
  send(m: { id: string; thread: string; text: string; from?: string }): void;
  /**
   * Asks until the gateway reports every message ended with nothing left to run or send
   * ('settled'), or until it exits ('exited'). A pong comes after every write its state
   * needed, so a process that answers settled has made all of them and survived.
   */
  settle(): Promise<'settled' | 'exited'>;
}

const live = new Set<GatewayProcess>();

/** `env` adds to the child's environment: CRASH_AFTER_WRITE, CHILD_ACKS. */
export function startGateway(
  dir: string,
  mode: string,
  env: Record<string, string> = {},
): GatewayProcess {
  const child = startJsonChild(CHILD, [dir], { CHILD_MODE: mode, ...env });
  const { proc } = child;
  // A line written to a process that has just killed itself fails with EPIPE; the exit is
  // what the test looks at.
  proc.stdin!.on('error', () => undefined);
  let gone = false;
  const exited = new Promise<void>((resolve) =>
    proc.once('exit', () => {
      gone = true;
      live.delete(handle);
      resolve();
    }),
  );
  const answered = new Set<Record<string, unknown>>();
  /** The next pong not yet looked at, or undefined when the process exits first. */
  const nextPong = () =>
    child
      .waitFor((e) => e.ev === 'pong' && !answered.has(e), 'a pong', WAIT_MS)
      .then(
        (e) => {
          answered.add(e);
          return e;
        },
        (e: unknown) => {
          if (gone) return undefined;
          throw e;
        },
      );
  const write = (line: unknown) => {
    if (!gone) child.send(line);
  };
  const handle: GatewayProcess = {
    proc,
    events: child.events,
    exited,
    waitFor: (pred, what) => child.waitFor(pred, what, WAIT_MS),
    send: write,
    async settle() {
      const deadline = Date.now() + WAIT_MS;
      while (Date.now() < deadline) {
        const pong = nextPong();
        write({ ping: true });
        const answer = await pong;
        if (!answer) return 'exited';
        if (answer.settled) return 'settled';
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`child never settled; saw ${JSON.stringify(child.events)}`);
    },
  };
  live.add(handle);
  return handle;
}

/** Kills every gateway a failed test left running, so the test file can end. */
export async function killLeftovers(): Promise<void> {
  await Promise.all([...live].map(kill9));
}

export async function kill9(c: GatewayProcess): Promise<void> {
  c.proc.kill('SIGKILL');
  await c.exited;
}

/** A fresh state folder with a one-repository config. */
export function gatewayStateDir(maxConcurrent = 4): string {
  const dir = mkdtempSync(join(tmpdir(), 'errand-crash-'));
  writeFileSync(
    join(dir, 'errand.yaml'),
    `execution:\n  max_concurrent: ${maxConcurrent}\n  shutdown_grace_seconds: 1\nrepos:\n  app:\n    git_url: /srv/app.git\n`,
  );
  return dir;
}

/** What the child's channel put into the thread: each delivery id once. */
export function deliveredTo(dir: string): Delivery[] {
  const f = join(dir, 'deliveries.jsonl');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Delivery);
}
