/**
 * Runs async jobs one at a time per key, in submission order; different keys run
 * concurrently. Jobs must not throw (the caller handles its own errors).
 */
export class KeyedSerial {
  #tails = new Map<string, Promise<void>>();

  run(key: string, job: () => Promise<void>): Promise<void> {
    const prev = this.#tails.get(key) ?? Promise.resolve();
    const next = prev.then(job);
    this.#tails.set(key, next);
    void next.then(() => {
      if (this.#tails.get(key) === next) this.#tails.delete(key);
    });
    return next;
  }

  /** Resolves when every job submitted so far has finished. */
  async idle(): Promise<void> {
    while (this.#tails.size > 0) await Promise.all(this.#tails.values());
  }
}
