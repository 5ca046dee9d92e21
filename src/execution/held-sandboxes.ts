import type { HeldSandbox, SandboxNetns } from '../sandbox/index.ts';
import type { ConversationDirs } from '../workspace/index.ts';

/** A sandbox started before its task, with its folders and network. */
export interface Held {
  /**
   * What the sandbox was started with (image, limits, CLI version): a task whose own,
   * read from the default branch when it starts, differ does not use it.
   */
  key: string;
  /** The folders it mounts: a conversation's own, or spare ones a new conversation adopts. */
  dirs: ConversationDirs;
  /** True when `dirs` are spare folders, removed with the sandbox; false: a conversation's. */
  spare: boolean;
  /** Its network namespace; connections are refused until a task's proxy session attaches. */
  netns: SandboxNetns;
  sandbox: HeldSandbox;
}

/**
 * At most one held sandbox per key (a repository, for its next new conversation, or a
 * conversation, for its next task). The executor asks for one when a task has wound down,
 * not while it runs: a podman start beside a starting CLI slows both on a small machine.
 * One unused for `maxIdleMs` is discarded (its image ages, and it holds a container and a
 * network helper), and so is the oldest when more than `max` would be held.
 */
export class HeldSandboxes {
  readonly #held = new Map<string, { held: Held; timer: NodeJS.Timeout }>();
  readonly #starting = new Map<string, Promise<void>>();
  readonly #maxIdleMs: number;
  readonly #max: number;
  readonly #discard: (h: Held) => Promise<void>;
  #closed = false;

  constructor(o: { maxIdleMs: number; max?: number; discard: (h: Held) => Promise<void> }) {
    this.#maxIdleMs = o.maxIdleMs;
    this.#max = o.max ?? Number.POSITIVE_INFINITY;
    this.#discard = o.discard;
  }

  /** Takes the key's entry out of the map, with its idle timer; undefined when none. */
  #remove(key: string): Held | undefined {
    const e = this.#held.get(key);
    if (!e) return undefined;
    this.#held.delete(key);
    clearTimeout(e.timer);
    return e.held;
  }

  /** The key's held sandbox, now the caller's; undefined when none is ready. */
  take(key: string): Held | undefined {
    const held = this.#remove(key);
    if (held?.sandbox.ready) return held;
    if (held) void this.#discard(held);
    return undefined;
  }

  /** Discards the key's held sandbox, if there is one (before its folders go). */
  async drop(key: string): Promise<void> {
    await this.#starting.get(key)?.catch(() => undefined);
    const held = this.#remove(key);
    if (held) await this.#discard(held);
  }

  /** Starts one for the key with `start`, unless one is held or starting. */
  replenish(key: string, start: () => Promise<Held | undefined>): void {
    if (this.#closed || this.#held.has(key) || this.#starting.has(key)) return;
    const p = start()
      .then(async (held) => {
        if (!held) return;
        if (this.#closed) {
          await this.#discard(held);
          return;
        }
        // A timer fires only while its entry is in the map: #remove clears it.
        const timer = setTimeout(() => void this.#discard(this.#remove(key)!), this.#maxIdleMs);
        timer.unref();
        this.#held.set(key, { held, timer });
        // A Map keeps insertion order: the first key is the oldest.
        while (this.#held.size > this.#max)
          void this.#discard(this.#remove(this.#held.keys().next().value!)!);
      })
      .finally(() => this.#starting.delete(key));
    p.catch(() => undefined);
    this.#starting.set(key, p);
  }

  /** Waits for sandboxes being started. */
  async settle(): Promise<void> {
    await Promise.all([...this.#starting.values()].map((p) => p.catch(() => undefined)));
  }

  /** Discards every held sandbox; none is started after this. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.settle();
    const all = [...this.#held.keys()].map((key) => this.#remove(key)!);
    await Promise.all(all.map((held) => this.#discard(held)));
  }
}
