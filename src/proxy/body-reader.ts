import type { IncomingMessage } from 'node:http';

/**
 * How many bytes of request bodies one task may have errand hold in memory at once. Some
 * bodies are read whole before they go on (a model API request is filtered, an AWS
 * request without its payload hash is hashed); with 256 connections a task could otherwise
 * make errand hold 256 of the largest, gigabytes, and starve every other task.
 */
export const MAX_BUFFERED_PER_TASK = 128 * 1024 * 1024;

/** The bytes of bodies a task has errand hold; one per proxy session. */
export class BodyBudget {
  readonly max: number;
  #held = 0;

  constructor(max: number = MAX_BUFFERED_PER_TASK) {
    this.max = max;
  }

  /** Takes `n` bytes of the budget; false (and nothing taken) when they are not left. */
  take(n: number): boolean {
    if (this.#held + n > this.max) return false;
    this.#held += n;
    return true;
  }

  give(n: number): void {
    this.#held = Math.max(0, this.#held - n);
  }
}

export type BodyRead =
  | { ok: true; body: Buffer }
  /** Past the `max` of this read. */
  | { ok: false; why: 'too_large' }
  /** The task holds its budget's worth of bodies already (see overBudget). */
  | { ok: false; why: 'over_budget'; budget: number };

/** The refusal for a read past the task's budget: the request may be sent again later. */
export function overBudget(budget: number): { status: number; code: string; message: string } {
  return {
    status: 503,
    code: 'too_much_buffered',
    message: `the task's requests that errand reads whole before sending hold ${budget / 1024 / 1024} MB, the most it holds for one task; send this one again once the others are done`,
  };
}

/**
 * Reads a request body whole, at most `max` bytes, each byte taken from `budget` until
 * `release` gives them back (when the request is done). Past either limit it stops reading
 * and leaves the stream alone, so a refusal can still be written (with `connection: close`).
 */
export function readBody(
  req: IncomingMessage,
  max: number,
  budget: BodyBudget,
): { read: Promise<BodyRead>; release: () => void } {
  let taken = 0;
  const release = () => {
    budget.give(taken);
    taken = 0;
  };
  const read = new Promise<BodyRead>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const stop = (r: BodyRead) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.pause();
      release();
      resolve(r);
    };
    const onData = (c: Buffer) => {
      if (taken + c.length > max) return stop({ ok: false, why: 'too_large' });
      if (!budget.take(c.length))
        return stop({ ok: false, why: 'over_budget', budget: budget.max });
      taken += c.length;
      chunks.push(c);
    };
    const onEnd = () => resolve({ ok: true, body: Buffer.concat(chunks) });
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', (e) => {
      release();
      reject(e);
    });
  });
  return { read, release };
}
