/**
 * Dashboard responsiveness with 500 conversations and 50,000 events (issue "Dashboard"):
 * page renders (overview, a conversation with 100 events, a task page) and the time for
 * one new event to reach 20 live clients over SSE, each beside the baseline of serving the
 * dashboard's static stylesheet in the same run.
 *
 *   bash scripts/node.sh bench/dashboard.ts [--conversations N] [--events-per N] [--runs N]
 */
import { parseArgs } from 'node:util';
import type { TaskEvent } from '../src/domain/index.ts';
import { dashboardFixture } from '../test/harness/dashboard-fixture.ts';
import { LiveExecutor } from '../test/harness/live-executor.ts';

const { values } = parseArgs({
  options: {
    conversations: { type: 'string', default: '500' },
    'events-per': { type: 'string', default: '100' },
    runs: { type: 'string', default: '50' },
    clients: { type: 'string', default: '20' },
  },
});
const CONVERSATIONS = Number(values.conversations);
const EVENTS_PER = Number(values['events-per']);
const RUNS = Number(values.runs);
const CLIENTS = Number(values.clients);

const f = await dashboardFixture({ executor: new LiveExecutor() });
const { store } = f;

// ---- data ------------------------------------------------------------------------------
const t0 = performance.now();
let lastTask = '';
let lastConversation = '';
for (let c = 0; c < CONVERSATIONS; c++) {
  const { message } = await store.insertMessage({
    repoId: 'app',
    channel: 'web',
    externalId: `bench-${c}`,
    threadKeys: [`bench-${c}`],
    ownThreadKey: `bench-${c}`,
    sender: { id: 'alice' },
    text: `Task number ${c}: make the thing faster`,
    attachments: [],
    receivedAt: Date.now(),
  });
  const conv = await store.createConversation({
    repoId: 'app',
    channel: 'web',
    threadKey: `bench-${c}`,
    title: `Task number ${c}`,
  });
  const { task } = await store.queueMessage(message.id, conv.id);
  for (let e = 0; e < EVENTS_PER; e++) {
    await store.appendEvent(
      task.id,
      e % 3 === 0 ? 'claude.user' : 'claude.assistant',
      e % 3 === 0
        ? { message: { content: [{ type: 'tool_result', content: `line\n`.repeat(20) }] } }
        : {
            message: {
              content: [
                { type: 'text', text: `Step ${e}: reading **files** and running tests.` },
                { type: 'tool_use', name: 'Bash', input: { command: `npm test -- ${e}` } },
              ],
            },
          },
    );
  }
  await store.finishTask(task.id, {
    state: 'done',
    outcome: 'success',
    usage: { costUsd: 0.05, turns: 10 },
    messageState: 'answered',
    delivery: {
      repoId: 'app',
      channel: 'web',
      conversationId: conv.id,
      taskId: task.id,
      messageId: message.id,
      kind: 'reply',
      text: 'Done: it is **faster** now.',
    },
  });
  lastTask = task.id;
  lastConversation = conv.id;
}
const loadMs = performance.now() - t0;

// ---- page renders -------------------------------------------------------------------------
async function timeGet(path: string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const s = performance.now();
    const r = await fetch(`${f.url}${path}`);
    await r.arrayBuffer();
    if (!r.ok) throw new Error(`${path}: ${r.status}`);
    out.push(performance.now() - s);
  }
  return out;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)]!;

const baseline = await timeGet('/assets/app.css');
const pages: Array<[string, number[]]> = [
  ['overview', await timeGet('/')],
  [`conversation (${EVENTS_PER} events)`, await timeGet(`/conversations/${lastConversation}`)],
  [`task page (${EVENTS_PER} events)`, await timeGet(`/tasks/${lastTask}`)],
  ['API: task events, one page', await timeGet(`/api/tasks/${lastTask}/events?limit=200`)],
];

// ---- SSE fan-out --------------------------------------------------------------------------
const readers: Array<{ seen: Set<number>; stop: () => void }> = [];
for (let i = 0; i < CLIENTS; i++) {
  const controller = new AbortController();
  const seen = new Set<number>();
  const res = await fetch(`${f.url}/live?topic=task:${lastTask}&after=${EVENTS_PER}`, {
    signal: controller.signal,
  });
  const reader = res.body!.getReader();
  void (async () => {
    let buf = '';
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += new TextDecoder().decode(value);
        for (const m of buf.matchAll(/^id: (\d+)$/gm)) seen.add(Number(m[1]));
        buf = buf.slice(Math.max(0, buf.lastIndexOf('\n\n')));
      }
    } catch {
      // aborted
    }
  })();
  readers.push({ seen, stop: () => controller.abort() });
}
await new Promise((r) => setTimeout(r, 200));
const fanout: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const ev: TaskEvent = await store.appendEvent(lastTask, 'claude.assistant', {
    message: { content: [{ type: 'text', text: `live ${i}` }] },
  });
  const s = performance.now();
  f.gateway.events.emit('event', ev);
  while (!readers.every((r) => r.seen.has(ev.seq))) await new Promise((r) => setImmediate(r));
  fanout.push(performance.now() - s);
}
for (const r of readers) r.stop();

const ms = (n: number) => `${n.toFixed(2)} ms`;
console.log(
  `dashboard: ${CONVERSATIONS} conversations, ${CONVERSATIONS * EVENTS_PER} events (loaded in ${(loadMs / 1000).toFixed(1)} s), ${RUNS} runs each`,
);
console.log(
  `  baseline, static stylesheet:     median ${ms(median(baseline))}, p90 ${ms(p90(baseline))}`,
);
for (const [name, xs] of pages) {
  console.log(
    `  ${name.padEnd(32)} median ${ms(median(xs))}, p90 ${ms(p90(xs))}  (${(median(xs) / median(baseline)).toFixed(1)}x baseline)`,
  );
}
console.log(
  `  SSE, one event to ${CLIENTS} clients:    median ${ms(median(fanout))}, p90 ${ms(p90(fanout))}  (${(median(fanout) / median(baseline)).toFixed(1)}x baseline)`,
);
await f.close();
process.exit(0);
