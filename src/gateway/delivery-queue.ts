import type { Delivery } from '../domain/index.ts';
import type { DeliveryRef, Store } from '../store/index.ts';
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
  /**
   * Deliveries each channel of each repository has in flight at once (handed to it, not yet
   * settled); the rest wait in order. Default 8.
   */
  inFlight?: number;
}

/**
 * Sends stored deliveries through their channel, in order per conversation, retrying with
 * exponential backoff. A delivery is marked sent only after the channel accepted it; one
 * that keeps failing ends `failed` with its last error, never silently dropped.
 *
 * Each channel of each repository has at most `inFlight` deliveries in flight: a backlog
 * of thousands of acknowledgements waits here as small records instead of as thousands of
 * mails built and queued inside the channel's client at once (docs/gateway.md).
 */
export class DeliveryQueue {
  readonly #opts: Required<Omit<DeliveryQueueOptions, 'logger' | 'store' | 'send'>> &
    DeliveryQueueOptions;
  // One per repository and channel, in order per conversation; #attempt handles its own
  // errors, as WorkQueue requires.
  #byChannel = new Map<string, WorkQueue<DeliveryRef>>();
  #timers = new Set<NodeJS.Timeout>();
  #closed = false;

  constructor(opts: DeliveryQueueOptions) {
    this.#opts = {
      baseDelayMs: 1000,
      maxDelayMs: 300_000,
      maxAttempts: 10,
      inFlight: 8,
      ...opts,
    };
  }

  /** Deliveries each channel has in flight at once; a lower value lets those in flight end. */
  set inFlight(n: number) {
    this.#opts.inFlight = n;
    for (const q of this.#byChannel.values()) q.limit = n;
  }

  /**
   * Queues a delivery. Only where to find it waits in memory, not its text or files: a
   * backlog's replies stay in the store until their turn.
   */
  enqueue(d: DeliveryRef): void {
    if (this.#closed) return;
    const { id, repoId, channel, conversationId, attempts } = d;
    const key = `${repoId}\0${channel}`;
    let q = this.#byChannel.get(key);
    if (!q) {
      q = new WorkQueue<DeliveryRef>((x) => this.#attempt(x), { limit: this.#opts.inFlight });
      this.#byChannel.set(key, q);
    }
    q.push(conversationId ?? id, { id, repoId, channel, conversationId, attempts });
  }

  /** Waits up to `ms` for deliveries in flight (not for scheduled retries). */
  async flush(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all([...this.#byChannel.values()].map((q) => q.idle())),
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

  async #attempt(w: DeliveryRef): Promise<void> {
    if (this.#closed) return;
    let d: Delivery | undefined;
    try {
      d = await this.#opts.store.getDelivery(w.id);
      // Sent by an earlier attempt, or its conversation was deleted meanwhile.
      if (d?.state !== 'pending') return;
      await this.#opts.send(d);
      await this.#opts.store.markDelivery(d.id, { state: 'sent' });
    } catch (e) {
      const error = describeError(e);
      const attempts = (d ?? w).attempts + 1;
      const final = attempts >= this.#opts.maxAttempts;
      await this.#opts.store
        .markDelivery(w.id, { state: final ? 'failed' : 'pending', error })
        .catch(() => undefined);
      this.#opts.logger.warn(
        { delivery: w.id, repo: w.repoId, channel: w.channel, attempts, err: error },
        final ? 'delivery failed; giving up' : 'delivery failed; will retry',
      );
      if (final || this.#closed) return;
      const delay = Math.min(this.#opts.baseDelayMs * 2 ** (attempts - 1), this.#opts.maxDelayMs);
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        this.enqueue({ ...w, attempts });
      }, delay);
      this.#timers.add(timer);
    }
  }
}
