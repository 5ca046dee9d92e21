/**
 * The gateway's own overhead, with a no-op sandbox: how fast stored messages become
 * started tasks, and how much memory a queued task costs. Targets (issue "Core"):
 * 10,000 queued messages drain with under 200 MB resident and nothing lost.
 *
 *   bash scripts/node.sh --expose-gc bench/gateway.ts [--messages N] [--concurrency N]
 *
 * Baseline, measured in the same run: an empty async loop of the same length.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadServerConfig } from '../src/config/index.ts';
import { Gateway } from '../src/gateway/index.ts';
import type { Channel, MessageSink, TaskExecutor } from '../src/gateway/ports.ts';
import { openSqliteStore } from '../src/store/index.ts';
import { silentLogger } from '../src/util/logger.ts';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '8' },
  },
});
const N = Number(values.messages);
const CONCURRENCY = Number(values.concurrency);
const mb = (b: number) => (b / 1024 / 1024).toFixed(1);

async function emptyLoop(n: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await Promise.resolve(i);
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'errand-bench-'));
  writeFileSync(
    join(dir, 'errand.yaml'),
    `execution:\n  max_concurrent: ${CONCURRENCY}\nrepos:\n  app:\n    git_url: /srv/app.git\n`,
  );
  const loaded = await loadServerConfig({ path: join(dir, 'errand.yaml'), env: {} });
  if (loaded.status !== 'ok') throw new Error('bench config invalid');

  // Tasks are held at the gate until every message is queued, so the queue really holds N.
  let openGate!: () => void;
  const gate = new Promise<void>((r) => {
    openGate = r;
  });
  const storedAt = new Map<string, number>();
  const startLatency: number[] = [];
  let firstStart = 0;
  let lastStart = 0;
  const executor: TaskExecutor = {
    async run(run) {
      await gate;
      const now = performance.now();
      if (!firstStart) firstStart = now;
      lastStart = now;
      const t = storedAt.get(run.parts[0]!.text);
      if (t !== undefined) startLatency.push(now - t);
      return { kind: 'success', text: 'ok', files: [] };
    },
  };
  let delivered = 0;
  let sink!: MessageSink;
  const channel: Channel = {
    kind: 'web',
    repoId: 'app',
    async start(s) {
      sink = s;
    },
    async stop() {},
    health: () => ({ state: 'connected', since: 0 }),
    authorize: async () => ({ ok: true }),
    async deliver() {
      delivered++;
    },
  };
  const store = openSqliteStore(join(dir, 'state.db'));
  const gateway = new Gateway({
    store,
    executor,
    config: loaded.config,
    logger: silentLogger(),
    channelFactory: () => [channel],
  });
  await gateway.start();

  const baselineMs = await emptyLoop(N);
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const heapBefore = process.memoryUsage().heapUsed;

  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const text = `m${i}`;
    await sink.receive({
      repoId: 'app',
      channel: 'web',
      externalId: text,
      threadKeys: [],
      ownThreadKey: text,
      sender: { id: 'bench' },
      text,
      attachments: [],
      receivedAt: Date.now(),
    });
    storedAt.set(text, performance.now());
  }
  const storeMs = performance.now() - t0;
  // Wait until intake has queued everything.
  while ((await store.listTasks({ states: ['queued'] })).length + CONCURRENCY < N)
    await new Promise((r) => setTimeout(r, 50));
  global.gc?.();
  const rssQueued = process.memoryUsage().rss;
  const heapQueued = process.memoryUsage().heapUsed;
  if (process.env.BENCH_DEBUG) console.error(process.memoryUsage());
  let rssPeak = rssQueued;

  const tDrain = performance.now();
  for (const t of storedAt.keys()) storedAt.set(t, tDrain);
  openGate();
  while (delivered < N) {
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    await new Promise((r) => setTimeout(r, 20));
  }
  const drainMs = lastStart - firstStart || 1;
  await gateway.shutdown();
  const unanswered = (await store.listMessages({})).filter((m) => m.state !== 'answered').length;
  await store.close();
  rmSync(dir, { recursive: true, force: true });

  startLatency.sort((a, b) => a - b);
  const p = (q: number) =>
    startLatency[Math.min(startLatency.length - 1, Math.floor(q * startLatency.length))]!.toFixed(
      1,
    );
  const baselineRate = (N / baselineMs) * 1000;
  const storeRate = (N / storeMs) * 1000;
  const startRate = (N / drainMs) * 1000;
  console.log(`gateway overhead, ${N} messages, max_concurrent ${CONCURRENCY}, no-op sandbox`);
  console.log(
    `  baseline: empty async loop        ${baselineRate.toFixed(0).padStart(10)} iterations/s`,
  );
  console.log(
    `  receive (store durably)           ${storeRate.toFixed(0).padStart(10)} msgs/s   ratio to baseline ${(storeRate / baselineRate).toExponential(2)}`,
  );
  console.log(
    `  queued -> task started (drain)    ${startRate.toFixed(0).padStart(10)} tasks/s  ratio to baseline ${(startRate / baselineRate).toExponential(2)}`,
  );
  console.log(`  start latency after gate opens    p50 ${p(0.5)} ms  p99 ${p(0.99)} ms`);
  console.log(
    `  resident memory                   before ${mb(rssBefore)} MB, ${N} queued ${mb(rssQueued)} MB, peak ${mb(rssPeak)} MB (target < 200 MB)`,
  );
  console.log(
    `  memory per queued task            ${((rssQueued - rssBefore) / N / 1024).toFixed(2)} KB resident, ${((heapQueued - heapBefore) / N / 1024).toFixed(2)} KB heap`,
  );
  console.log(`  messages not answered             ${unanswered} (target 0)`);
  if (unanswered > 0 || rssPeak > 200 * 1024 * 1024) process.exitCode = 1;
}

await main();
