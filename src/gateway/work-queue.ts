/**
 * Per-key FIFO queues of small work items: items of one key are handled in order, one at a
 * time; different keys concurrently, at most `limit` items at once over all keys. Only the
 * items wait in memory (not a promise chain per item), so a backlog of thousands of
 * messages stays cheap.
 *
 * With a limit, keys take turns: after each item its key goes to the back of the line, so
 * one long queue does not hold a slot while other keys wait.
 */
export class WorkQueue<T> {
  readonly #handle: (item: T) => Promise<void>;
  #limit: number;
  #queues = new Map<string, T[]>();
  /** Keys with items waiting and none being handled, in the order they became ready. */
  #ready = new Set<string>();
  /** Keys with an item being handled. */
  #active = new Set<string>();
  #idleWaiters: Array<() => void> = [];

  /**
   * `handle` must not throw; it owns its errors. `limit`: items handled at once over all
   * keys; default no limit (every key at once).
   */
  constructor(handle: (item: T) => Promise<void>, opts: { limit?: number } = {}) {
    this.#handle = handle;
    this.#limit = opts.limit ?? Number.POSITIVE_INFINITY;
  }

  /** Items handled at once. A lower limit lets the items in flight finish. */
  get limit(): number {
    return this.#limit;
  }

  set limit(n: number) {
    this.#limit = n;
    this.#fill();
  }

  /** Items being handled now. */
  get inFlight(): number {
    return this.#active.size;
  }

  push(key: string, item: T): void {
    const q = this.#queues.get(key);
    if (q) q.push(item);
    else this.#queues.set(key, [item]);
    if (!this.#active.has(key)) this.#ready.add(key);
    this.#fill();
  }

  #fill(): void {
    for (const key of this.#ready) {
      if (this.#active.size >= this.#limit) return;
      this.#ready.delete(key);
      this.#start(key);
    }
  }

  #start(key: string): void {
    const q = this.#queues.get(key)!;
    const item = q.shift()!;
    this.#active.add(key);
    void this.#handle(item).finally(() => {
      this.#active.delete(key);
      if (q.length > 0) this.#ready.add(key);
      else this.#queues.delete(key);
      this.#fill();
      if (this.#active.size === 0 && this.#ready.size === 0) {
        for (const resolve of this.#idleWaiters.splice(0)) resolve();
      }
    });
  }

  /** Resolves when every queue is empty and no item is being handled. */
  async idle(): Promise<void> {
    if (this.#active.size === 0 && this.#ready.size === 0) return;
    await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }
}
