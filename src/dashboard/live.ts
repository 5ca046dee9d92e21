/**
 * Server-Sent Events for live pages. One subscription to the gateway's events fans out to
 * every open page. A task page gets each new event rendered (with its seq as the SSE id,
 * so a reconnect resumes after the last one it has); other pages get a throttled
 * "changed" and fetch their content again.
 */

import type { Delivery, StoredMessage, Task, TaskEvent } from '../domain/index.ts';
import type { Gateway } from '../gateway/index.ts';
import { SSE_KEEPALIVE, sseFrame } from './sse.ts';
import { planSection, renderEvent } from './views/timeline.ts';

export type Topic =
  | { kind: 'overview' }
  | { kind: 'conversation'; id: string }
  | { kind: 'task'; id: string };

export function parseTopic(s: string | undefined): Topic | undefined {
  if (s === 'overview') return { kind: 'overview' };
  const m = /^(conversation|task):([ct]_[A-Za-z0-9]{1,62})$/.exec(s ?? '');
  if (!m) return undefined;
  return m[1] === 'task' ? { kind: 'task', id: m[2]! } : { kind: 'conversation', id: m[2]! };
}

/** Where a client's stream goes; `end` closes it. */
export interface LiveSink {
  write(chunk: string): void;
  end(): void;
}

interface Client {
  res: LiveSink;
  topic: Topic;
  /** Conversation of a task page's task; tasks of a conversation page. */
  taskIds: Set<string>;
  changedTimer?: NodeJS.Timeout;
}

const THROTTLE_MS = 500;
/**
 * Events a task stream sends on (re)connecting. A page further behind gets them in turns:
 * the stream ends after these, with the last one's seq as its id, and the page reconnects
 * after it. Opening a stream never loads a long task's whole history at once.
 */
export const MAX_BACKLOG_EVENTS = 500;
const KEEPALIVE_MS = 15_000;
const RETRY_MS = 2000;

export class LiveHub {
  readonly #clients = new Set<Client>();
  readonly #gateway: Gateway;
  readonly #keepalive: NodeJS.Timeout;
  // biome-ignore lint/suspicious/noExplicitAny: EventEmitter listeners take any arguments.
  readonly #listeners: Array<[string, (...args: any[]) => void]>;

  constructor(gateway: Gateway) {
    this.#gateway = gateway;
    this.#listeners = [
      ['event', (e: TaskEvent) => this.#onEvent(e)],
      ['task', (t: Task) => this.#onTask(t)],
      ['delivery', (d: Delivery) => this.#onConversationChange(d.conversationId)],
      ['message', (m: StoredMessage) => this.#onMessage(m)],
    ];
    for (const [name, fn] of this.#listeners) gateway.events.on(name, fn);
    this.#keepalive = setInterval(() => {
      for (const c of this.#clients) c.res.write(SSE_KEEPALIVE);
    }, KEEPALIVE_MS);
    this.#keepalive.unref();
  }

  get size(): number {
    return this.#clients.size;
  }

  /**
   * Opens a stream. `after`: for a task page, the last event seq the page has (from
   * Last-Event-ID on a reconnect); the events after it are sent first.
   */
  async open(sink: LiveSink, topic: Topic, after: number, taskIds: string[]): Promise<() => void> {
    sink.write(sseFrame({ retry: RETRY_MS }));
    const client: Client = { res: sink, topic, taskIds: new Set(taskIds) };
    this.#clients.add(client);
    if (topic.kind === 'task') {
      const backlog = await this.#gateway.store.listEvents(topic.id, after, MAX_BACKLOG_EVENTS + 1);
      for (const e of backlog.slice(0, MAX_BACKLOG_EVENTS)) send(client, e);
      if (backlog.length > MAX_BACKLOG_EVENTS) {
        // An id alone moves the page's resume point (an event without data is not shown),
        // also past events that render to nothing.
        sink.write(sseFrame({ id: backlog[MAX_BACKLOG_EVENTS - 1]!.seq }));
        this.#clients.delete(client);
        sink.end();
      }
    }
    return () => {
      clearTimeout(client.changedTimer);
      this.#clients.delete(client);
    };
  }

  close(): void {
    clearInterval(this.#keepalive);
    for (const [name, fn] of this.#listeners) this.#gateway.events.off(name, fn);
    for (const c of this.#clients) c.res.end();
    this.#clients.clear();
  }

  #onEvent(e: TaskEvent): void {
    for (const c of this.#clients) {
      if (c.topic.kind === 'task' && c.topic.id === e.taskId) send(c, e);
      else if (c.topic.kind === 'conversation' && c.taskIds.has(e.taskId)) changed(c);
    }
  }

  #onTask(t: Task): void {
    for (const c of this.#clients) {
      if (c.topic.kind === 'task' && c.topic.id === t.id && t.state !== 'running') {
        c.res.write(sseFrame({ event: 'state', data: t.state }));
      } else if (c.topic.kind === 'conversation' && c.topic.id === t.conversationId) {
        c.taskIds.add(t.id);
        changed(c);
      } else if (c.topic.kind === 'overview') changed(c);
    }
  }

  #onMessage(m: StoredMessage): void {
    this.#onConversationChange(m.conversationId);
  }

  #onConversationChange(conversationId: string | undefined): void {
    for (const c of this.#clients) {
      if (c.topic.kind === 'overview') changed(c);
      else if (c.topic.kind === 'conversation' && c.topic.id === conversationId) changed(c);
    }
  }
}

function send(c: Client, e: TaskEvent): void {
  if (e.kind === 'plan') {
    const items = (e.data as { items?: unknown } | undefined)?.items;
    c.res.write(sseFrame({ event: 'plan', data: planSection(items).value }));
  }
  const html = renderEvent(e).value;
  if (!html) return;
  c.res.write(sseFrame({ event: 'ev', id: e.seq, data: html }));
}

function changed(c: Client): void {
  if (c.changedTimer) return;
  c.changedTimer = setTimeout(() => {
    c.changedTimer = undefined;
    c.res.write(sseFrame({ event: 'changed', data: '1' }));
  }, THROTTLE_MS);
}
