/**
 * Email pickup, against a real Dovecot on loopback:
 * 1. Latency: APPEND on the server to the message stored in errand's SQLite store, with
 *    IDLE, against the server's own floor measured in the same run: APPEND to a bare
 *    imapflow client in IDLE seeing the new message.
 * 2. Backlog: 2,000 waiting messages drained (authenticated, parsed, stored, flagged),
 *    in messages per second, against a bare client fetching the same messages' sources.
 *
 *   bash scripts/node.sh bench/email-pickup.ts [--runs N] [--backlog N]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EmailChannel } from '../src/channels/email/index.ts';
import { openSqliteStore } from '../src/store/index.ts';
import { silentLogger } from '../src/util/logger.ts';
import { DovecotServer } from '../test/harness/dovecot-server.ts';
import { emailYaml, passingAuthResults } from '../test/harness/email-fixture.ts';
import { configFrom } from '../test/harness/gateway-fixture.ts';
import { buildMail } from '../test/harness/signed-mail.ts';
import { SmtpCatcher } from '../test/harness/smtp-catcher.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    backlog: { type: 'string', default: '2000' },
  },
});
const RUNS = Number(values.runs);
const BACKLOG = Number(values.backlog);

const imap = await DovecotServer.start();
const smtp = await SmtpCatcher.start();
const dir = mkdtempSync(join(tmpdir(), 'errand-bench-email-'));

const client = () => imap.client();

const mail = (i: number) =>
  buildMail({
    from: 'alice@sender.test',
    subject: `bench ${i}`,
    text: `Task number ${i}.\n\nOn Mon, 3 Nov 2025 at 10:00, errand <errand@example.com> wrote:\n> earlier\n`,
    prepend: [passingAuthResults('sender.test')],
  });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)]!;

// ---- floor: a bare IDLE client -------------------------------------------------------
const floor: number[] = [];
{
  const watcher = client();
  await watcher.connect();
  await watcher.mailboxOpen('INBOX');
  let resolveExists: (() => void) | undefined;
  watcher.on('exists', () => resolveExists?.());
  const appender = client();
  await appender.connect();
  for (let i = 0; i < RUNS; i++) {
    watcher.idle().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    const raw = await mail(i);
    const seen = new Promise<void>((r) => {
      resolveExists = r;
    });
    const t0 = performance.now();
    await appender.append('INBOX', raw);
    await seen;
    floor.push(performance.now() - t0);
  }
  // Leave the floor's messages read so errand does not pick them up.
  await watcher.messageFlagsAdd('1:*', ['\\Seen']);
  await watcher.logout();
  await appender.logout();
}

// ---- errand: APPEND to stored ---------------------------------------------------------
const config = await configFrom(emailYaml(imap, smtp, {}), dir);
const store = openSqliteStore(join(dir, 'state.db'));
const storedAt = new Map<string, number>();
const channel = new EmailChannel('app', config.repos.app!.email!, {
  logger: silentLogger(),
  attachmentsDir: join(dir, 'attachments'),
});
await channel.start({
  async receive(m) {
    const r = await store.insertMessage(m);
    storedAt.set(m.subject ?? '', performance.now());
    return { messageId: r.message.id, duplicate: r.duplicate };
  },
  hasConversation: async () => false,
});
while (channel.health().state !== 'connected') await new Promise((r) => setTimeout(r, 20));

const errand: number[] = [];
{
  const appender = client();
  await appender.connect();
  for (let i = 0; i < RUNS; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const raw = await mail(1000 + i);
    const t0 = performance.now();
    await appender.append('INBOX', raw);
    while (!storedAt.has(`bench ${1000 + i}`)) await new Promise((r) => setTimeout(r, 2));
    errand.push(storedAt.get(`bench ${1000 + i}`)! - t0);
  }
  await appender.logout();
}
await channel.stop();

// ---- backlog ---------------------------------------------------------------------------
{
  const appender = client();
  await appender.connect();
  for (let i = 0; i < BACKLOG; i++) await appender.append('INBOX', await mail(10_000 + i));
  await appender.logout();
}
// Baseline: a bare client fetching every unread message's source.
let bareRate: number;
{
  const c = client();
  await c.connect();
  await c.mailboxOpen('INBOX');
  const t0 = performance.now();
  const uids = (await c.search({ seen: false }, { uid: true })) || [];
  let n = 0;
  for await (const m of c.fetch(uids, { uid: true, source: true }, { uid: true })) {
    if (m.source) n++;
  }
  bareRate = n / ((performance.now() - t0) / 1000);
  await c.logout();
}
const before = storedAt.size;
const t0 = performance.now();
await channel.start({
  async receive(m) {
    const r = await store.insertMessage(m);
    storedAt.set(m.subject ?? '', performance.now());
    return { messageId: r.message.id, duplicate: r.duplicate };
  },
  hasConversation: async () => false,
});
while (storedAt.size < before + BACKLOG) await new Promise((r) => setTimeout(r, 20));
const drainRate = BACKLOG / ((performance.now() - t0) / 1000);
await channel.stop();

const f = (n: number) => n.toFixed(0);
console.log(`email pickup (${RUNS} runs, Dovecot on loopback)`);
console.log(
  `  floor, APPEND to a bare IDLE client: median ${f(median(floor))} ms, p90 ${f(p90(floor))} ms`,
);
console.log(
  `  errand, APPEND to stored:            median ${f(median(errand))} ms, p90 ${f(p90(errand))} ms`,
);
console.log(`  ratio (median): ${(median(errand) / median(floor)).toFixed(2)}x`);
console.log(`backlog of ${BACKLOG}`);
console.log(`  bare fetch of the sources: ${f(bareRate)} messages/s`);
console.log(`  errand drain (auth, parse, store, flag): ${f(drainRate)} messages/s`);
console.log(`  ratio: ${(drainRate / bareRate).toFixed(2)}x`);

await store.close();
await imap.close();
await smtp.close();
rmSync(dir, { recursive: true, force: true });
