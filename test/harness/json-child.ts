import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A Node script in its own process that reads JSON lines on stdin and prints JSON events. */
export interface JsonChild {
  proc: ChildProcess;
  /** Every event printed so far, in order. */
  events: Array<Record<string, unknown>>;
  /**
   * Resolves with the first event (printed so far or later) that `pred` accepts; rejects
   * once the child has exited without printing one.
   */
  waitFor(
    pred: (e: Record<string, unknown>) => boolean,
    what: string,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  send(m: unknown): void;
}

/** Starts `script` with `args` under this Node, stderr shown; `env` adds to this process's. */
export function startJsonChild(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): JsonChild {
  const proc = spawn(process.execPath, [script, ...args], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const events: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    events.push(JSON.parse(l) as Record<string, unknown>);
    for (const w of waiters) w();
  });
  // After 'close' every line the child printed has been read: a waiter still waiting will
  // never be answered.
  let closed = false;
  proc.once('close', () => {
    closed = true;
    for (const w of waiters) w();
  });
  return {
    proc,
    events,
    send: (m) => proc.stdin!.write(`${JSON.stringify(m)}\n`),
    waitFor: (pred, what, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const hit = events.find(pred);
          if (hit) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(hit);
          } else if (closed) {
            waiters.delete(check);
            clearTimeout(timer);
            reject(
              new Error(`child exited before it reported ${what}; saw ${JSON.stringify(events)}`),
            );
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`child never reported ${what}; saw ${JSON.stringify(events)}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
  };
}

/** Sends `signal` and waits until the child exited; nothing when it already has. */
export async function stopJsonChild(c: JsonChild, signal: NodeJS.Signals): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  const exited = new Promise((r) => c.proc.once('exit', r));
  c.proc.kill(signal);
  await exited;
}
