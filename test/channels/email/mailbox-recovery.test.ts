import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DovecotServer } from '../../harness/dovecot-server.ts';
import { emailFixture, emailYaml, passingAuthResults } from '../../harness/email-fixture.ts';
import { eventually } from '../../harness/gateway-fixture.ts';
import type { ScriptedExecutor } from '../../harness/scripted-executor.ts';
import { buildMail } from '../../harness/signed-mail.ts';
import { SmtpCatcher } from '../../harness/smtp-catcher.ts';

const CHILD = fileURLToPath(new URL('../../harness/email-crash-child.ts', import.meta.url));

let imap: DovecotServer;
let smtp: SmtpCatcher;
before(async () => {
  [imap, smtp] = await Promise.all([DovecotServer.start(), SmtpCatcher.start()]);
});
after(async () => {
  await imap?.close();
  await smtp?.close();
});

const task = (subject: string, text = 'Please do the thing.') =>
  buildMail({
    from: 'alice@sender.test',
    subject,
    text,
    prepend: [passingAuthResults('sender.test')],
  });

const seenCount = async () =>
  (await imap.messages()).filter((m) => m.flags.includes('\\Seen')).length;

test('new mail is picked up by IDLE, with polling an hour away', async () => {
  const f = await emailFixture({ imap, smtp, pollSeconds: 3600 });
  try {
    await eventually(() => f.channel.health().state === 'connected', 'the mailbox connected');
    const seen = await seenCount();
    await imap.append(await task('idle pickup'));
    await eventually(async () => (await seenCount()) > seen, 'the mail handled');
    const executor = f.executor as ScriptedExecutor;
    await eventually(() => executor.runs.length === 1, 'the task');
  } finally {
    await f.close();
  }
});

test('the channel reports the IMAP server going away, reconnects, and picks up mail sent meanwhile', async () => {
  const f = await emailFixture({ imap, smtp });
  try {
    await eventually(() => f.channel.health().state === 'connected', 'the mailbox connected');
    await imap.stop();
    const down = await eventually(
      () => (f.channel.health().state === 'retrying' ? f.channel.health() : undefined),
      'health to show retrying',
    );
    assert.ok(down.lastError, 'the last error is reported');
    await imap.restart();
    await imap.append(await task('after restart'));
    await eventually(() => f.channel.health().state === 'connected', 'the mailbox reconnected');
    const executor = f.executor as ScriptedExecutor;
    await eventually(
      () => executor.runs.some((r) => r.parts[0]?.text.includes('Please do the thing')),
      'the mail sent during the outage to run',
    );
  } finally {
    await f.close();
  }
});

test('errand killed between storing a mail and flagging it handled loses nothing and runs it once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'errand-email-crash-'));
  try {
    writeFileSync(join(dir, 'errand.yaml'), emailYaml(imap, smtp, {}));
    const sentBefore = smtp.messages.length;
    const seen = await seenCount();
    const child = spawn(process.execPath, [CHILD, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b));
    const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_c, s) => r(s)));
    await eventually(() => out.includes('"started"'), 'the child to start');
    await imap.append(await task('crash window', 'Run me exactly once.'));
    assert.equal(await exited, 'SIGKILL');
    assert.match(out, /"stored"/);
    assert.equal(await seenCount(), seen, 'the server was not told: the mail is still unread');

    const f = await emailFixture({ imap, smtp, dir });
    try {
      await eventually(async () => (await seenCount()) === seen + 1, 'the mail flagged on restart');
      const executor = f.executor as ScriptedExecutor;
      await eventually(() => executor.runs.length === 1, 'the task');
      const texts = executor.runs.map((r) => r.parts.map((p) => p.text).join());
      assert.deepEqual(texts, ['Run me exactly once.']);
      const stored = await f.store.listMessages({ states: ['answered', 'queued', 'received'] });
      assert.equal(stored.filter((m) => m.text === 'Run me exactly once.').length, 1);
      await smtp.waitFor(sentBefore + 2);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(smtp.messages.length, sentBefore + 2, 'one acknowledgement and one answer');
    } finally {
      await f.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a malformed message is stored as refused and flagged, and mail after it still runs', async () => {
  const f = await emailFixture({ imap, smtp });
  try {
    const seen = await seenCount();
    await imap.append(Buffer.from('\u0000\u00ff not a mail at all\r\n\r\n\u00ff'));
    await imap.append(await task('after the garbage', 'Still here?'));
    await eventually(async () => (await seenCount()) === seen + 2, 'both flagged as handled');
    const executor = f.executor as ScriptedExecutor;
    await eventually(
      () => executor.runs.some((r) => r.parts[0]?.text === 'Still here?'),
      'the good mail to run',
    );
    const refused = await f.store.listMessages({ states: ['rejected'] });
    assert.ok(refused.some((m) => m.externalId.startsWith('refused.')));
  } finally {
    await f.close();
  }
});

test('a reply the SMTP server refuses for a while is sent once it accepts again', async () => {
  const f = await emailFixture({ imap, smtp });
  try {
    const sentBefore = smtp.messages.length;
    smtp.refuseNext(3);
    await imap.append(await task('smtp outage', 'Answer despite the outage.'));
    const sent = await smtp.waitFor(sentBefore + 2, 20_000);
    assert.ok(smtp.refused >= 3);
    const texts = sent.slice(sentBefore).map((m) => m.raw);
    assert.ok(texts.some((t) => t.includes('Answer despite the outage')));
    const deliveries = await f.store.listDeliveries({});
    assert.ok(deliveries.some((d) => d.state === 'sent' && d.attempts > 0 && d.lastError));
  } finally {
    await f.close();
  }
});
