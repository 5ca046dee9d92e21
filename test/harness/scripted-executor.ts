import type { Conversation } from '../../src/domain/index.ts';
import type { EventSink, TaskExecutor, TaskOutcome, TaskRun } from '../../src/gateway/ports.ts';

/**
 * A task executor for gateway tests. Each run records what it was given; a run whose
 * prompt contains "hang" waits until released or aborted, "fail" fails, "throw" throws.
 * A conversation a prompt with "undeletable" ran in cannot be removed: its removal fails
 * as rm does on files a rootless sandbox gave to a uid of its own (EACCES).
 */
export class ScriptedExecutor implements TaskExecutor {
  readonly runs: TaskRun[] = [];
  readonly removed: string[] = [];
  readonly #undeletable = new Set<string>();
  active = 0;
  maxActive = 0;
  #release = new Map<string, () => void>();
  #startWaiters: Array<() => void> = [];
  /** When false, "hang" prompts finish at once (a restarted process in crash tests). */
  hangs: boolean;

  constructor(opts: { hang?: boolean } = {}) {
    this.hangs = opts.hang ?? true;
  }

  async run(run: TaskRun, signal: AbortSignal, events: EventSink): Promise<TaskOutcome> {
    this.runs.push(run);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    for (const w of this.#startWaiters.splice(0)) w();
    try {
      const text = run.parts.map((p) => p.text).join('\n');
      if (text.includes('undeletable')) this.#undeletable.add(run.conversation.id);
      await events.event('start', { parts: run.parts.length });
      if (this.hangs && text.includes('hang')) {
        await new Promise<void>((resolve) => {
          this.#release.set(run.task.id, resolve);
          signal.addEventListener('abort', () => resolve(), { once: true });
        });
        if (signal.aborted) return { kind: 'stopped', text: 'partial work', files: [] };
      }
      if (text.includes('throw')) throw new Error('executor exploded');
      if (text.includes('fail'))
        return { kind: 'failure', text: 'it failed', files: [], detail: 'scripted' };
      await events.event('done', {});
      return {
        kind: 'success',
        text: `done: ${run.parts.map((p) => `${p.sender}: ${p.text}`).join(' | ')}`,
        files: [],
        sessionId: run.conversation.sessionId ?? `session-${run.conversation.id}`,
        usage: { costUsd: 0.01, turns: 1 },
      };
    } finally {
      this.active--;
    }
  }

  release(taskId: string): void {
    this.#release.get(taskId)?.();
  }

  releaseAll(): void {
    for (const r of this.#release.values()) r();
  }

  /** Lets every current and future "hang" run finish. */
  finishAll(): void {
    this.hangs = false;
    this.releaseAll();
  }

  /** Resolves once `n` runs have started. */
  async waitForRuns(n: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.runs.length < n) {
      if (Date.now() > deadline) throw new Error(`expected ${n} runs, got ${this.runs.length}`);
      await new Promise<void>((resolve) => {
        this.#startWaiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  async removeConversation(c: Conversation): Promise<void> {
    if (this.#undeletable.has(c.id))
      throw Object.assign(
        new Error(`EACCES: permission denied, rmdir '${c.id}/workspace/locked'`),
        {
          code: 'EACCES',
        },
      );
    this.removed.push(c.id);
  }
}
