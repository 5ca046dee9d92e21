/**
 * An executor whose tasks emit exactly the events a test hands them, as a fully tricked
 * agent would: `emit` appends one event to the running task; the task runs until stopped.
 */
import type { EventSink, TaskExecutor, TaskOutcome, TaskRun } from '../../src/gateway/ports.ts';

export class PuppetExecutor implements TaskExecutor {
  readonly #sinks = new Map<string, EventSink>();

  async run(run: TaskRun, signal: AbortSignal, events: EventSink): Promise<TaskOutcome> {
    this.#sinks.set(run.task.id, events);
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
    this.#sinks.delete(run.task.id);
    return { kind: 'stopped', text: 'Stopped.', files: [] };
  }

  /** Appends an event to running task `taskId`; throws when it is not running here. */
  async emit(taskId: string, kind: string, data: unknown): Promise<void> {
    const sink = this.#sinks.get(taskId);
    if (!sink) throw new Error(`task ${taskId} is not running in the puppet executor`);
    await sink.event(kind, data);
  }
}
