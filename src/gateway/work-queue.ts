/**
 * Per-key FIFO queues of small work items with one worker per key: items of one key are
 * handled in order, different keys concurrently. Only the items wait in memory (not a
 * promise chain per item), so a backlog of thousands of messages stays cheap.
 */
export class WorkQueue<T> {
  readonly #handle: (item: T) => Promise<void>;
  #queues = new Map<string, T[]>();
  #workers = new Map<string, Promise<void>>();

  /** `handle` must not throw; it owns its errors. */
  constructor(handle: (item: T) => Promise<void>) {
    this.#handle = handle;
  }

  push(key: string, item: T): void {
    const q = this.#queues.get(key);
    if (q) q.push(item);
    else this.#queues.set(key, [item]);
    if (!this.#workers.has(key)) {
      const worker = this.#drain(key).finally(() => this.#workers.delete(key));
      this.#workers.set(key, worker);
    }
  }

  async #drain(key: string): Promise<void> {
    for (;;) {
      const q = this.#queues.get(key);
      const item = q?.shift();
      if (item === undefined) {
        this.#queues.delete(key);
        return;
      }
      await this.#handle(item);
    }
  }

  /** Resolves when every queue is empty and no item is being handled. */
  async idle(): Promise<void> {
    while (this.#workers.size > 0) await Promise.all(this.#workers.values());
  }
}
