import { execFile } from 'node:child_process';
import { Cron } from 'croner';
import type { ServerConfig } from '../config/index.ts';
import { describeError } from '../util/errors.ts';
import type { Logger } from '../util/logger.ts';

/** The part of a repository's schedule the runner needs. */
export type ScheduleConfig = NonNullable<ServerConfig['repos'][string]['schedules']>[string];

/** Output of a schedule's command beyond this is cut: it becomes a prompt, not a file. */
const MAX_COMMAND_OUTPUT = 256 * 1024;
const COMMAND_TIMEOUT_MS = 5 * 60_000;

export type PromptResult =
  | { kind: 'prompt'; text: string }
  | { kind: 'nothing' }
  | { kind: 'failed'; reason: string };

/** The prompt of one run: the configured text, or the output of the configured command. */
export async function schedulePrompt(s: ScheduleConfig, cwd: string): Promise<PromptResult> {
  if (s.prompt !== undefined) return { kind: 'prompt', text: s.prompt };
  const command = s.command!;
  return await new Promise((resolve) => {
    execFile(
      '/bin/sh',
      ['-c', command],
      { cwd, timeout: COMMAND_TIMEOUT_MS, maxBuffer: MAX_COMMAND_OUTPUT, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) {
          const tail = stderr.trim().split('\n').slice(-3).join(' | ');
          resolve({
            kind: 'failed',
            reason: `command failed (${describeError(err)})${tail ? `: ${tail}` : ''}`,
          });
        } else if (stdout.trim() === '') {
          resolve({ kind: 'nothing' });
        } else {
          resolve({ kind: 'prompt', text: stdout.trim() });
        }
      },
    );
  });
}

/**
 * Fires each configured schedule at its cron times (in its time zone). `fire` decides
 * whether to run; the timers know nothing about tasks.
 */
export class ScheduleTimers {
  #jobs: Cron[] = [];
  readonly #fire: (repoId: string, name: string) => void;
  readonly #log: Logger;

  constructor(fire: (repoId: string, name: string) => void, log: Logger) {
    this.#fire = fire;
    this.#log = log;
  }

  /** Replaces every timer with those of `config`. */
  apply(config: ServerConfig): void {
    this.stop();
    for (const [repoId, repo] of Object.entries(config.repos)) {
      for (const [name, s] of Object.entries(repo.schedules ?? {})) {
        const job = new Cron(s.cron, { timezone: s.timezone, catch: true }, () =>
          this.#fire(repoId, name),
        );
        this.#jobs.push(job);
        this.#log.debug(
          { repo: repoId, schedule: name, next: job.nextRun()?.toISOString() },
          'schedule armed',
        );
      }
    }
  }

  stop(): void {
    for (const job of this.#jobs) job.stop();
    this.#jobs = [];
  }
}
