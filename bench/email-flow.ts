/**
 * N parallel email tasks through the whole flow (issue "End to end"): DKIM-signed mail in a
 * real Dovecot, the email channel, the gateway, a podman sandbox behind the proxy, the real
 * Claude Code CLI running the repository's tests with the scripted model, and the reply by
 * SMTP. Prints time to acknowledgement, to agent start and to reply (p50, p90, max) for
 * N = 1, 4, 16, beside the sandbox start floor (bare `podman run --rm --network none`)
 * measured in the same run.
 *
 *   bash scripts/node.sh bench/email-flow.ts [--n 1,4,16]
 */
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { BASE_IMAGE, ensurePodmanEnv } from '../src/sandbox/index.ts';
import { startEndToEnd } from '../test/harness/end-to-end.ts';
import { buildMail, sign } from '../test/harness/signed-mail.ts';

const { values } = parseArgs({ options: { n: { type: 'string', default: '1,4,16' } } });
const SIZES = values.n.split(',').map(Number);

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const fmt = (xs: number[]) =>
  `p50 ${(pct(xs, 0.5) / 1000).toFixed(2)} s  p90 ${(pct(xs, 0.9) / 1000).toFixed(2)} s  max ${(Math.max(...xs) / 1000).toFixed(2)} s`;

const e = await startEndToEnd({ maxConcurrent: Math.max(...SIZES) });
try {
  // The floor: starting a bare container, no errand involved.
  const env = await ensurePodmanEnv(`${e.dir}/floor`);
  const floor: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    spawnSync('podman', ['run', '--rm', '--network', 'none', BASE_IMAGE, 'true'], { env });
    floor.push(performance.now() - t0);
  }
  console.log(`email tasks through the whole flow (the CLI runs the repository's tests once)`);
  console.log(`  sandbox start floor, bare podman run: ${fmt(floor)}`);

  let seq = 0;
  // A warm-up task builds and caches the image, as a running errand would have.
  for (const n of [1, ...SIZES]) {
    const ids: string[] = [];
    const sentAt = new Map<string, number>();
    const sentBefore = e.smtp.messages.length;
    await Promise.all(
      Array.from({ length: n }, async () => {
        const id = `bench-${++seq}@sender.test`;
        ids.push(id);
        const raw = await sign(
          await buildMail({
            from: 'alice@sender.test',
            subject: `bench ${seq}`,
            text: 'Please run the tests.',
            messageId: `<${id}>`,
          }),
          e.sender,
        );
        sentAt.set(id, Date.now());
        await e.imap.append(raw);
      }),
    );
    const acks = new Map<string, number>();
    const replies = new Map<string, number>();
    const deadline = Date.now() + 600_000;
    while (replies.size < n) {
      if (Date.now() > deadline) throw new Error(`only ${replies.size} of ${n} replies arrived`);
      for (const m of e.smtp.messages.slice(sentBefore)) {
        const to = /^In-Reply-To: <([^>]+)>/im.exec(m.raw)?.[1];
        if (!to || !sentAt.has(to)) continue;
        const isAck = m.raw.includes('Got it.');
        const map = isAck ? acks : replies;
        if (!map.has(to)) map.set(to, Date.now());
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const starts = new Map<string, number>();
    for (const msg of await e.store.listMessages({ states: ['answered'] })) {
      const id = msg.externalId;
      if (!sentAt.has(id) || !msg.taskId) continue;
      const task = await e.store.getTask(msg.taskId);
      if (task?.startedAt) starts.set(id, task.startedAt);
    }
    const since = (m: Map<string, number>) => ids.map((id) => m.get(id)! - sentAt.get(id)!);
    if (n === 1 && seq === 1) continue;
    console.log(`  N = ${n}`);
    console.log(`    to acknowledgement  ${fmt(since(acks))}`);
    console.log(`    to agent start      ${fmt(since(starts))}`);
    console.log(`    to reply            ${fmt(since(replies))}`);
  }
} finally {
  await e.close();
}
