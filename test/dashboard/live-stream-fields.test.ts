/**
 * The live stream of a task page, read by a parser that follows the SSE specification to the
 * letter (lines end at CRLF, CR or LF), so anything a browser would take as a field is seen.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { type DashboardFixture, dashboardFixture } from '../harness/dashboard-fixture.ts';
import { eventually } from '../harness/gateway-fixture.ts';
import { PuppetExecutor } from '../harness/puppet-executor.ts';

interface SseEvent {
  type: string;
  data: string;
  lastEventId: string;
}

/**
 * The event stream interpretation of the HTML Living Standard ("Server-sent events",
 * 9.2.6): every field line seen, the events dispatched, the last reconnection time.
 */
class SseParser {
  readonly fields: Array<{ name: string; value: string }> = [];
  readonly events: SseEvent[] = [];
  retry: number | undefined;
  #buf = '';
  #type = '';
  #data = '';
  #lastEventId = '';

  push(text: string): void {
    this.#buf += text;
    // A CR at the end may be the first half of a CRLF: wait for the next chunk.
    for (let m = /\r\n|\r(?!$)|\n/.exec(this.#buf); m; m = /\r\n|\r(?!$)|\n/.exec(this.#buf)) {
      this.#line(this.#buf.slice(0, m.index));
      this.#buf = this.#buf.slice(m.index + m[0].length);
    }
  }

  #line(line: string): void {
    if (line === '') {
      this.#dispatch();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    this.fields.push({ name, value });
    if (name === 'event') this.#type = value;
    else if (name === 'data') this.#data += `${value}\n`;
    else if (name === 'id' && !value.includes('\0')) this.#lastEventId = value;
    else if (name === 'retry' && /^[0-9]+$/.test(value)) this.retry = Number(value);
  }

  #dispatch(): void {
    if (this.#data === '') {
      this.#type = '';
      return;
    }
    const data = this.#data.endsWith('\n') ? this.#data.slice(0, -1) : this.#data;
    this.events.push({ type: this.#type || 'message', data, lastEventId: this.#lastEventId });
    this.#type = '';
    this.#data = '';
  }
}

/** A live stream being read; `until` reads on until the parser has seen enough. */
async function openStream(url: string) {
  const controller = new AbortController();
  const res = await fetch(url, { signal: controller.signal });
  assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new SseParser();
  const until = async (enough: (p: SseParser) => boolean): Promise<SseParser> => {
    while (!enough(parser)) {
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended early');
      parser.push(value);
    }
    return parser;
  };
  return { until, close: () => controller.abort() };
}

const executor = new PuppetExecutor();
let f: DashboardFixture;
before(async () => {
  f = await dashboardFixture({ executor });
});
after(() => f?.close());

async function runningTask(text: string): Promise<string> {
  const res = await fetch(`${f.url}/api/repos/app/tasks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${f.controlToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ text }),
  });
  assert.equal(res.status, 202, await res.text());
  const task = await eventually(async () => {
    const [t] = await f.store.listTasks({ states: ['running'] });
    return t;
  }, 'the task to run');
  return task.id;
}

// What a tricked agent writes to split the stream: each bare CR would end a line there.
const INJECTED =
  'before\rretry: 86400000\r\revent: changed\rdata: 1\r\rid: 999999\revent: state\rdata: done\r\rafter';

it("keeps an agent's bare carriage returns from adding event, id or retry fields to the live stream", async () => {
  const taskId = await runningTask('split the stream');
  const stream = await openStream(`${f.url}/live?topic=task:${taskId}`);
  // Subscribed before the agent writes, so every event comes live, once.
  await stream.until((p) => p.retry !== undefined);
  await executor.emit(taskId, 'plan', {
    items: [{ content: `step one${INJECTED}`, status: `completed\r\revent: changed\rdata: 1\r\r` }],
  });
  await executor.emit(taskId, 'claude.user', {
    message: { content: [{ type: 'tool_result', tool_use_id: 'tu1', content: INJECTED }] },
  });
  await executor.emit(taskId, 'claude.assistant', {
    message: { content: [{ type: 'text', text: 'the last event' }] },
  });
  const seen = await stream.until((p) => p.events.some((e) => e.data.includes('the last event')));
  stream.close();
  const stored = await f.store.listEvents(taskId);
  const seqs = stored.map((e) => String(e.seq));

  assert.deepEqual(
    seen.events.map((e) => e.type),
    ['plan', 'ev', 'ev', 'ev'],
    'the plan, then one event each: no event split off, none added',
  );
  assert.deepEqual(
    seen.events.filter((e) => e.type === 'ev').map((e) => e.lastEventId),
    seqs,
    'each event carries its own seq as id, never the injected one',
  );
  assert.equal(seen.retry, 2000, 'the reconnection time is ours');
  assert.deepEqual(
    seen.fields.filter((x) => x.name !== 'data'),
    [
      { name: 'retry', value: '2000' },
      { name: 'event', value: 'plan' },
      ...seqs.flatMap((seq) => [
        { name: 'id', value: seq },
        { name: 'event', value: 'ev' },
      ]),
    ],
    'every field but data is one the server wrote',
  );
  // Intact: HTML reads a CR as a newline, and so does the stream now.
  const asData = INJECTED.replaceAll('\r', '\n');
  const toolEvent = seen.events[2]!;
  assert.ok(toolEvent.data.includes(`<pre>${asData}</pre>`), toolEvent.data);
  assert.ok(seen.events[0]!.data.includes(`step one${asData}`), seen.events[0]!.data);
  await f.gateway.stop(taskId, 'test');
});
