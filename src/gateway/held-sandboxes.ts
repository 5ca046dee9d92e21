import type { SandboxNetns } from '../proxy/index.ts';
import type { HeldSandbox } from '../sandbox/index.ts';
import type { ConversationDirs } from '../workspace/index.ts';

/** A sandbox started for a repository's next new conversation, with its folders and network. */
export interface HeldForRepo {
  /**
   * What the sandbox was started with (image, limits, CLI version): a task whose own,
   * read from the default branch when it starts, differ does not use it.
   */
  key: string;
  /** Spare conversation folders, mounted in the sandbox. */
  dirs: ConversationDirs;
  /** Its network namespace; connections are refused until a task's proxy session attaches. */
  netns: SandboxNetns;
  sandbox: HeldSandbox;
}

/**
 * At most one held sandbox per repository. The executor asks for one when a task of the
 * repository has wound down, not while it runs: a podman start beside a starting CLI
 * slows both on a small machine. One unused for `maxIdleMs` is discarded: its image ages
 * and it holds a container and a network helper.
 */
export class HeldSandboxes {
  readonly #held = new Map<string, { held: HeldForRepo; timer: NodeJS.Timeout }>();
  readonly #starting = new Map<string, Promise<void>>();
  readonly #maxIdleMs: number;
  readonly #discard: (h: HeldForRepo) => Promise<void>;
  #closed = false;

  constructor(o: { maxIdleMs: number; discard: (h: HeldForRepo) => Promise<void> }) {
    this.#maxIdleMs = o.maxIdleMs;
    this.#discard = o.discard;
  }

  /** The repository's held sandbox, now the caller's; undefined when none is ready. */
  take(repoId: string): HeldForRepo | undefined {
    const e = this.#held.get(repoId);
    if (!e) return undefined;
    this.#held.delete(repoId);
    clearTimeout(e.timer);
    if (e.held.sandbox.ready) return e.held;
    void this.#discard(e.held);
    return undefined;
  }

  /** Starts one for the repository with `start`, unless one is held or starting. */
  replenish(repoId: string, start: () => Promise<HeldForRepo | undefined>): void {
    if (this.#closed || this.#held.has(repoId) || this.#starting.has(repoId)) return;
    const p = start()
      .then(async (held) => {
        if (!held) return;
        if (this.#closed) {
          await this.#discard(held);
          return;
        }
        const timer = setTimeout(() => {
          if (this.#held.get(repoId)?.held !== held) return;
          this.#held.delete(repoId);
          void this.#discard(held);
        }, this.#maxIdleMs);
        timer.unref();
        this.#held.set(repoId, { held, timer });
      })
      .finally(() => this.#starting.delete(repoId));
    p.catch(() => undefined);
    this.#starting.set(repoId, p);
  }

  /** Waits for sandboxes being started. */
  async settle(): Promise<void> {
    await Promise.all([...this.#starting.values()].map((p) => p.catch(() => undefined)));
  }

  /** Discards every held sandbox; none is started after this. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.settle();
    const all = [...this.#held.values()];
    this.#held.clear();
    await Promise.all(
      all.map((e) => {
        clearTimeout(e.timer);
        return this.#discard(e.held);
      }),
    );
  }
}
