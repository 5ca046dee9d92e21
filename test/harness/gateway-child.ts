/**
 * A gateway in its own process, for crash tests: the parent kills it with SIGKILL at a
 * chosen point and starts it again on the same state.
 *
 * argv[2]: state folder (holds errand.yaml; the store and deliveries.jsonl are put there).
 * CHILD_MODE: where to hang (hang-authorize, hang-deliver-before, hang-deliver-after);
 * prompts containing "hang" hang in the executor in every mode but `normal`.
 * CRASH_AFTER_WRITE=N: the process kills itself with SIGKILL right after its Nth store
 * write (each write is reported first as {ev:'write', n, method}).
 * CHILD_ACKS=1: the channel asks for an `ack` when a conversation opens, as email does.
 * stdin: one JSON line each, a message {id, thread, text, from?} or {ping: true}, which
 * is answered {ev:'pong', settled} (settled: every message ended, no task or delivery open).
 * Sender `oversize` is refused with a notice, as email refuses mail over its size limit.
 * stdout: one JSON event per line.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { loadServerConfig } from '../../src/config/index.ts';
import { type Delivery, type Task, TERMINAL_MESSAGE_STATES } from '../../src/domain/index.ts';
import { Gateway } from '../../src/gateway/index.ts';
import type { Channel } from '../../src/gateway/ports.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { crashingStore } from './crashing-store.ts';
import { ScriptedExecutor } from './scripted-executor.ts';

const dir = process.argv[2]!;
const mode = process.env.CHILD_MODE ?? 'normal';
const out = (ev: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(ev)}\n`);
const forever = () => new Promise<never>(() => {});
const deliveriesFile = join(dir, 'deliveries.jsonl');

function delivered(): Delivery[] {
  if (!existsSync(deliveriesFile)) return [];
  return readFileSync(deliveriesFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Delivery);
}

const channel: Channel & { sink?: Parameters<Channel['start']>[0] } = {
  kind: 'web',
  repoId: 'app',
  acknowledgesNewConversations: process.env.CHILD_ACKS === '1',
  async start(sink) {
    this.sink = sink;
  },
  async stop() {},
  health: () => ({ state: 'connected', since: 0 }),
  async authorize(m) {
    if (mode === 'hang-authorize') await forever();
    if (m.sender.id === 'oversize')
      return { ok: false, reason: 'over the size limit', notice: 'too big for errand' };
    return { ok: true };
  },
  async deliver(d) {
    out({ ev: 'delivering', id: d.id, kind: d.kind });
    if (mode === 'hang-deliver-before') await forever();
    // Idempotent by delivery id, as the Channel contract asks.
    if (!delivered().some((x) => x.id === d.id))
      appendFileSync(deliveriesFile, `${JSON.stringify(d)}\n`);
    out({ ev: 'delivered', id: d.id });
    if (mode === 'hang-deliver-after') await forever();
  },
};

async function settled(): Promise<boolean> {
  const [messages, tasks, deliveries] = await Promise.all([
    store.listMessages({}),
    store.listTasks({ states: ['queued', 'running'] }),
    store.listDeliveries({ states: ['pending'] }),
  ]);
  return (
    messages.every((x) => TERMINAL_MESSAGE_STATES.includes(x.state)) &&
    tasks.length === 0 &&
    deliveries.length === 0
  );
}

const executor = new ScriptedExecutor({ hang: mode !== 'normal' });
const config = await loadServerConfig({ path: join(dir, 'errand.yaml'), env: {} });
if (config.status !== 'ok') throw new Error(JSON.stringify(config));
const crashAfter = process.env.CRASH_AFTER_WRITE;
const store = openSqliteStore(join(dir, 'state.db'));
const crashing = crashingStore(store, crashAfter ? Number(crashAfter) : undefined, (n, method) =>
  out({ ev: 'write', n, method }),
);
const gateway = new Gateway({
  store: crashing,
  executor,
  config: config.config,
  logger: silentLogger(),
  channelFactory: () => [channel],
});
gateway.events.on('task', (t: Task) => out({ ev: 'task', id: t.id, state: t.state }));
await gateway.start();
out({ ev: 'ready' });
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const m = JSON.parse(line) as
    | { id: string; thread: string; text: string; from?: string }
    | { ping: true };
  if ('ping' in m) {
    out({ ev: 'pong', settled: await settled() });
    continue;
  }
  const r = await channel.sink!.receive({
    repoId: 'app',
    channel: 'web',
    externalId: m.id,
    threadKeys: [m.thread],
    ownThreadKey: m.thread,
    sender: { id: m.from ?? 'alice' },
    text: m.text,
    attachments: [],
    receivedAt: Date.now(),
  });
  out({ ev: 'stored', id: m.id, messageId: r.messageId, duplicate: r.duplicate });
}
