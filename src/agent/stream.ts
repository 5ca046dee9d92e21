import { StringDecoder } from 'node:string_decoder';
import type { EventSink } from '../gateway/index.ts';

/**
 * The longest output line (characters) that is parsed and stored. The CLI's lines are
 * far shorter (a tool's output is cut to tens of kilobytes), but the agent can write to
 * the CLI's stdout itself (`/proc/PID/fd/1`): a line without end would otherwise grow in
 * errand's memory until it crashed, and be stored whole. What is past the limit is
 * counted and dropped; the line's start is stored as `agent_output` with `chars`.
 */
export const MAX_LINE_CHARS = 4 * 1024 * 1024;
/**
 * What a session id the CLI names looks like (it names UUIDs). The agent can write lines
 * into the CLI's output too, last before its task is stopped: an id of its choosing (a
 * path, an option, a number) would be kept and handed to `--resume`, an object would fail
 * the store's write.
 */
const SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
/** How much of a line past the limit is kept for the record. */
const CUT_LINE_HEAD = 500;

export interface StreamResult {
  type: 'result';
  subtype?: string;
  is_error?: boolean;
  result?: string;
  session_id?: string;
  total_cost_usd?: number;
  num_turns?: number;
  duration_ms?: number;
  usage?: {
    input_tokens?: number;
    output_tokens?: number;
    cache_read_input_tokens?: number;
    cache_creation_input_tokens?: number;
    server_tool_use?: { web_search_requests?: number; web_fetch_requests?: number };
  };
}

export interface PlanItem {
  content: string;
  status: string;
}

/**
 * Reads the CLI's stream-json output as it arrives: stores each line as a task event, in
 * order, and keeps what the reply and the outcome need (session, texts, plan, result).
 */
export class StreamState {
  sessionId: string | undefined;
  result: StreamResult | undefined;
  /** The agent's text messages, in order. */
  readonly texts: string[] = [];
  /** Latest TodoWrite list, exposed as the task's plan. */
  plan: PlanItem[] | undefined;
  /** The last lines of output, for error replies. */
  readonly tail: string[] = [];
  /** The current line so far (its start only, once it is past MAX_LINE_CHARS). */
  #buffer = '';
  /** The current line's length when it is past MAX_LINE_CHARS; 0 while it is not. */
  #overlong = 0;
  /** A character split between two chunks is decoded once both halves are here. */
  readonly #decoder = new StringDecoder('utf8');
  #pending: Promise<void> = Promise.resolve();
  readonly #events: EventSink;

  readonly #onResult: (() => void) | undefined;

  /** `onResult`: called once the result line arrived (the agent's answer is final). */
  constructor(sessionId: string | undefined, events: EventSink, onResult?: () => void) {
    this.sessionId = sessionId;
    this.#events = events;
    this.#onResult = onResult;
  }

  /** Waits until every event parsed so far is stored. */
  async flushed(): Promise<void> {
    await this.#pending;
  }

  push(chunk: Buffer): void {
    // Only the new text is searched for line ends: a long line costs its length once.
    const text = this.#decoder.write(chunk);
    let from = 0;
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', from)) {
      this.#append(text.slice(from, i));
      this.#endLine();
      from = i + 1;
    }
    this.#append(text.slice(from));
  }

  /** Flushes a last partial line and waits until every event is stored. */
  async end(): Promise<void> {
    this.#append(this.#decoder.end());
    if (this.#buffer || this.#overlong) this.#endLine();
    await this.#pending;
  }

  #append(part: string): void {
    if (this.#overlong) {
      this.#overlong += part.length;
    } else if (this.#buffer.length + part.length <= MAX_LINE_CHARS) {
      this.#buffer += part;
    } else {
      this.#overlong = this.#buffer.length + part.length;
      this.#buffer = `${this.#buffer}${part.slice(0, CUT_LINE_HEAD)}`.slice(0, CUT_LINE_HEAD);
    }
  }

  #endLine(): void {
    const line = this.#buffer;
    const chars = this.#overlong;
    this.#buffer = '';
    this.#overlong = 0;
    if (!chars) {
      this.#line(line);
      return;
    }
    this.#keepTail(`${line}… (${chars} characters)`);
    this.#emit('agent_output', { line, chars });
  }

  #keepTail(line: string): void {
    this.tail.push(line);
    if (this.tail.length > 20) this.tail.shift();
  }

  #emit(kind: string, data: unknown): void {
    this.#pending = this.#pending.then(() => this.#events.event(kind, data));
  }

  #line(line: string): void {
    if (!line.trim()) return;
    this.#keepTail(line.length > 500 ? `${line.slice(0, 500)}…` : line);
    let ev: { type?: unknown; session_id?: unknown; message?: { content?: unknown } };
    try {
      ev = JSON.parse(line);
    } catch {
      this.#emit('agent_output', { line });
      return;
    }
    // The agent can write lines of any shape into the CLI's output; reading one must not
    // throw (this runs in the output stream's handler, where a throw ends errand).
    if (!isObject(ev)) {
      this.#emit('agent_output', { line });
      return;
    }
    if (
      typeof ev.session_id === 'string' &&
      SESSION_ID.test(ev.session_id) &&
      ev.session_id !== this.sessionId
    ) {
      this.sessionId = ev.session_id;
      // Kept as soon as the CLI names it (its `system`/`init` line), not only when it
      // finishes: a task errand does not live to finish must still be resumable.
      const id = ev.session_id;
      this.#pending = this.#pending.then(() => this.#events.session?.(id));
    }
    const content = isObject(ev.message) ? ev.message.content : undefined;
    if (ev.type === 'assistant' && Array.isArray(content)) {
      for (const block of content as unknown[]) {
        if (!isObject(block)) continue;
        if (block.type === 'text' && typeof block.text === 'string' && block.text.trim())
          this.texts.push(block.text);
        const todos = isObject(block.input) ? block.input.todos : undefined;
        if (block.type === 'tool_use' && block.name === 'TodoWrite' && Array.isArray(todos)) {
          this.plan = todos.map((t) => {
            const item = isObject(t) ? t : {};
            return {
              content: String(item.content ?? ''),
              status: String(item.status ?? 'pending'),
            };
          });
          this.#emit('plan', { items: this.plan });
        }
      }
    }
    this.#emit(`claude.${typeof ev.type === 'string' ? ev.type : 'unknown'}`, ev);
    if (ev.type === 'result') {
      this.result = ev as StreamResult;
      this.#onResult?.();
    }
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
