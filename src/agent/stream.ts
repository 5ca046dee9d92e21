import type { EventSink } from '../gateway/index.ts';

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

interface ContentBlock {
  type: string;
  text?: string;
  name?: string;
  input?: { todos?: Array<{ content?: string; status?: string }> };
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
  #buffer = '';
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
    this.#buffer += chunk.toString('utf8');
    let i = this.#buffer.indexOf('\n');
    while (i >= 0) {
      this.#line(this.#buffer.slice(0, i));
      this.#buffer = this.#buffer.slice(i + 1);
      i = this.#buffer.indexOf('\n');
    }
  }

  /** Flushes a last partial line and waits until every event is stored. */
  async end(): Promise<void> {
    if (this.#buffer) this.#line(this.#buffer);
    this.#buffer = '';
    await this.#pending;
  }

  #emit(kind: string, data: unknown): void {
    this.#pending = this.#pending.then(() => this.#events.event(kind, data));
  }

  #line(line: string): void {
    if (!line.trim()) return;
    this.tail.push(line.length > 500 ? `${line.slice(0, 500)}…` : line);
    if (this.tail.length > 20) this.tail.shift();
    let ev: { type?: string; session_id?: string; message?: { content?: ContentBlock[] } };
    try {
      ev = JSON.parse(line);
    } catch {
      this.#emit('agent_output', { line });
      return;
    }
    if (ev.session_id && ev.session_id !== this.sessionId) {
      this.sessionId = ev.session_id;
      // Kept as soon as the CLI names it (its `system`/`init` line), not only when it
      // finishes: a task errand does not live to finish must still be resumable.
      const id = ev.session_id;
      this.#pending = this.#pending.then(() => this.#events.session?.(id));
    }
    if (ev.type === 'assistant') {
      for (const block of ev.message?.content ?? []) {
        if (block.type === 'text' && block.text?.trim()) this.texts.push(block.text);
        if (
          block.type === 'tool_use' &&
          block.name === 'TodoWrite' &&
          Array.isArray(block.input?.todos)
        ) {
          this.plan = block.input.todos.map((t) => ({
            content: String(t.content ?? ''),
            status: String(t.status ?? 'pending'),
          }));
          this.#emit('plan', { items: this.plan });
        }
      }
    }
    this.#emit(`claude.${ev.type ?? 'unknown'}`, ev);
    if (ev.type === 'result') {
      this.result = ev as StreamResult;
      this.#onResult?.();
    }
  }
}
