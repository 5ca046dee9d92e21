import type { Delivery, Store } from '../store/types.ts';
import { describeError } from '../util/errors.ts';
import type { Logger } from '../util/logger.ts';
import { WorkQueue } from './work-queue.ts';

export interface DeliveryQueueOptions {
  store: Store;
  logger: Logger;
  send: (d: Delivery) => Promise<void>;
  /** First retry delay; doubles per attempt up to `maxDelayMs`. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** After this many failed attempts the delivery is marked `failed` and left visible. */
  maxAttempts?: number;
}

/**
 * Sends stored deliveries through their channel, in order per conversation, retrying with
 * exponential backoff. A delivery is marked sent only after the channel accepted it; one
 * that keeps failing ends `failed` with its last error, never silently dropped.
 */
export class DeliveryQueue {
  readonly #opts: Required<Omit<DeliveryQueueOptions, 'logger' | 'store' | 'send'>> &
    DeliveryQueueOptions;
  // In order per conversation; #attempt handles its own errors, as WorkQueue requires.
  #serial = new WorkQueue<Delivery>((d) => this.#attempt(d));
  #timers = new Set<NodeJS.Timeout>();
  #closed = false;

  constructor(opts: DeliveryQueueOptions) {
    this.#opts = { baseDelayMs: 1000, maxDelayMs: 300_000, maxAttempts: 10, ...opts };
  }

  enqueue(d: Delivery): void {
    if (this.#closed) return;
    this.#serial.push(d.conversationId ?? d.id, d);
  }

  /** Waits up to `ms` for deliveries in flight (not for scheduled retries). */
  async flush(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#serial.idle(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms);
      }),
    ]);
    clearTimeout(timer);
  }

  /** Cancels scheduled retries; pending deliveries are sent again at the next start. */
  close(): void {
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  async #attempt(d: Delivery): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#opts.send(d);
      await this.#opts.store.markDelivery(d.id, { state: 'sent' });
    } catch (e) {
      const error = describeError(e);
      const attempts = d.attempts + 1;
      const final = attempts >= this.#opts.maxAttempts;
      await this.#opts.store
        .markDelivery(d.id, { state: final ? 'failed' : 'pending', error })
        .catch(() => undefined);
      this.#opts.logger.warn(
        { delivery: d.id, repo: d.repoId, channel: d.channel, attempts, err: error },
        final ? 'delivery failed; giving up' : 'delivery failed; will retry',
      );
      if (final || this.#closed) return;
      const delay = Math.min(this.#opts.baseDelayMs * 2 ** (attempts - 1), this.#opts.maxDelayMs);
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        this.enqueue({ ...d, attempts, lastError: error });
      }, delay);
      this.#timers.add(timer);
    }
  }
}
