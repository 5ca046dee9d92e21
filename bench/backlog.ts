/**
 * A backlog of mail waiting when errand starts: N messages (default 10,000) in a real
 * Dovecot mailbox, errand's gateway and email channel in a process of their own
 * (bench/backlog-child.ts) with an executor that answers at once, and a real SMTP server
 * on loopback. Every message goes through intake, a task and two deliveries (the
 * acknowledgement and the reply). Prints the peak resident memory of errand's process
 * against the same process started on an empty mailbox in the same run, the time to
 * drain, and the loss: messages without exactly one acknowledgement and one reply.
 * Target (issue "memory under a backlog"): under 200 MB peak, nothing lost.
 *
 *   bash scripts/node.sh bench/backlog.ts [--messages N] [--node-flags='--max-semi-space-size=4']
 *
 * BACKLOG_MESSAGES=N does what --messages does. Both of errand's processes (baseline and
 * backlog) start with the Node flags errand's launch paths give it (ERRAND_NODE_FLAGS);
 * --node-flags replaces them, to compare heap settings (`--node-flags=` for Node's defaults).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ERRAND_NODE_FLAGS } from '../src/cli/node-flags.ts';
import { DovecotServer } from '../test/harness/dovecot-server.ts';
import { emailYaml, passingAuthResults } from '../test/harness/email-fixture.ts';
import { buildMail } from '../test/harness/signed-mail.ts';
import { SmtpCatcher } from '../test/harness/smtp-catcher.ts';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: process.env.BACKLOG_MESSAGES ?? '10000' },
    'timeout-minutes': { type: 'string', default: '20' },
    'node-flags': { type: 'string', default: ERRAND_NODE_FLAGS.join(' ') },
  },
});
const NODE_FLAGS = values['node-flags'].split(' ').filter(Boolean);
const N = Number(values.messages);
const TIMEOUT_MS = Number(values['timeout-minutes']) * 60_000;
const CHILD = new URL('./backlog-child.ts', import.meta.url).pathname;
const mb = (kb: number) => `${(kb / 1024).toFixed(0)} MB`;

/** Resident memory of a process from /proc, in kB: now and its peak so far (VmHWM). */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

interface Errand {
  proc: ChildProcess;
  startedAt: number;
  connected: Promise<void>;
  stop(): Promise<void>;
}

function startErrand(dir: string): Errand {
  const proc = spawn(process.execPath, [...NODE_FLAGS, CHILD, dir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(proc, 'exit').then(([code]) => {
    throw new Error(`errand's process exited (${code}) before its mailbox was open`);
  });
  exited.catch(() => undefined);
  const connected = new Promise<void>((resolve) => {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      // Anything else on stdout is Node's own (a --trace-gc line, say).
      if (line.startsWith('{') && (JSON.parse(line) as { ev: string }).ev === 'connected') {
        resolve();
      }
    });
  });
  return {
    proc,
    startedAt: performance.now(),
    connected: Promise.race([connected, exited]),
    async stop() {
      if (proc.exitCode !== null) return;
      const gone = once(proc, 'exit');
      proc.kill('SIGTERM');
      await gone;
    },
  };
}

const imap = await DovecotServer.start();
const smtp = await SmtpCatcher.start();
const dirs: string[] = [];
const errandDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'errand-bench-backlog-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'errand.yaml'), emailYaml(imap, smtp, {}));
  return dir;
};

try {
  // ---- baseline: the same process on an empty mailbox ---------------------------------
  const idle = startErrand(errandDir());
  await idle.connected;
  // A few poll rounds of an idle process: what it holds once everything is loaded.
  await new Promise((r) => setTimeout(r, 3000));
  const baseline = memoryOf(idle.proc.pid!).peak;
  await idle.stop();

  // ---- the backlog ---------------------------------------------------------------------
  const t0 = performance.now();
  const raws: string[] = [];
  for (let i = 0; i < N; i++) {
    raws.push(
      await buildMail({
        from: 'alice@sender.test',
        subject: `backlog ${i}`,
        text: `Task number ${i}.\n\nPlease look at the failing test and fix it.\n`,
        messageId: `<backlog-${i}@sender.test>`,
        prepend: [passingAuthResults('sender.test')],
      }),
    );
  }
  imap.deliverToMaildir(raws);
  raws.length = 0;
  const appendS = (performance.now() - t0) / 1000;

  const errand = startErrand(errandDir());
  let peak = 0;
  const sampler = setInterval(() => {
    try {
      peak = Math.max(peak, memoryOf(errand.proc.pid!).peak);
    } catch {
      // The process ended; the last sample stands.
    }
  }, 200);
  await errand.connected;

  // Every mail errand sends answers one of ours (In-Reply-To); an ack says "Got it.".
  const acks = new Map<string, number>();
  const replies = new Map<string, number>();
  let read = 0;
  const tally = () => {
    for (; read < smtp.messages.length; read++) {
      const raw = smtp.messages[read]!.raw;
      const to = /^In-Reply-To: <([^>]+)>/im.exec(raw)?.[1] ?? '(none)';
      const map = raw.includes('Got it.') ? acks : replies;
      map.set(to, (map.get(to) ?? 0) + 1);
    }
  };
  const deadline = Date.now() + TIMEOUT_MS;
  while (acks.size < N || replies.size < N) {
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
    tally();
  }
  const drainS = (performance.now() - errand.startedAt) / 1000;
  // Anything sent twice would arrive now.
  await new Promise((r) => setTimeout(r, 2000));
  tally();
  peak = Math.max(peak, memoryOf(errand.proc.pid!).peak);
  clearInterval(sampler);
  await errand.stop();

  let lost = 0;
  for (let i = 0; i < N; i++) {
    const id = `backlog-${i}@sender.test`;
    if (acks.get(id) !== 1 || replies.get(id) !== 1) lost++;
  }
  const extra = smtp.messages.length - 2 * N;

  console.log(`backlog of ${N} mails waiting in Dovecot when errand starts`);
  console.log(
    "  errand: gateway + email channel in a child process, on SQLite; the executor is scripted (answers at once), so this measures errand's own memory, not an agent's",
  );
  console.log(
    `  errand's processes run with ${NODE_FLAGS.length ? NODE_FLAGS.join(' ') : "Node's default flags"}`,
  );
  console.log(`  putting the backlog in the Maildir took ${appendS.toFixed(1)} s (not counted)`);
  console.log(`  baseline, same process on an empty mailbox: peak RSS ${mb(baseline)}`);
  console.log(`  backlog: peak RSS ${mb(peak)} (${(peak / baseline).toFixed(2)}x the baseline)`);
  console.log(`  drained (every ack and reply at the SMTP server) in ${drainS.toFixed(1)} s`);
  console.log(
    `  lost: ${lost} of ${N} without exactly one ack and one reply; ${Math.max(0, extra)} extra mails`,
  );
  if (lost > 0) process.exitCode = 1;
} finally {
  await imap.close();
  await smtp.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
