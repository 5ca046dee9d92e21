import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import PostalMime from 'postal-mime';
import {
  type EmailFixture,
  emailFixture,
  passingAuthResults,
} from '../../harness/email-fixture.ts';
import { eventually } from '../../harness/gateway-fixture.ts';
import type { ScriptedExecutor } from '../../harness/scripted-executor.ts';
import { buildMail } from '../../harness/signed-mail.ts';

let f: EmailFixture;
before(async () => {
  f = await emailFixture({
    email: '      trusted_authserv_id: mx.example.com\n      max_message_mb: 0.05\n',
    repo: '    schedules:\n      digest: { cron: "0 6 * * *", prompt: summarize open issues, channel: email, to: bob@team.test }\n',
  });
});
after(() => f?.close());

const runs = () => (f.executor as ScriptedExecutor).runs;
const big = Buffer.alloc(80 * 1024, 'x');

test('an authorized sender over the size limit gets a notice in the thread and no agent', async () => {
  const sentBefore = f.smtp.messages.length;
  await f.imap.append(
    await buildMail({
      from: 'alice@sender.test',
      subject: 'Huge log',
      messageId: '<huge@sender.test>',
      attachments: [{ filename: 'log.txt', content: big }],
      prepend: [passingAuthResults('sender.test')],
    }),
  );
  const [notice] = (await f.smtp.waitFor(sentBefore + 1)).slice(sentBefore);
  const parsed = await PostalMime.parse(notice!.raw);
  assert.deepEqual(notice!.to, ['alice@sender.test']);
  assert.equal(parsed.inReplyTo, '<huge@sender.test>');
  assert.match(
    parsed.text ?? '',
    /Your message is 0\.1\d? MB; errand reads messages of up to 0\.05 MB/,
  );
  const [stored] = await f.store.listMessages({ states: ['rejected'] });
  assert.match(stored!.stateReason ?? '', /over the limit/);
  assert.equal(runs().length, 0);
});

test('an unauthenticated sender over the size limit gets nothing', async () => {
  const sentBefore = f.smtp.messages.length;
  await f.imap.append(
    await buildMail({
      from: 'alice@sender.test',
      subject: 'Huge forged',
      attachments: [{ filename: 'log.txt', content: big }],
    }),
  );
  await eventually(
    async () => (await f.store.listMessages({ states: ['rejected'] })).length === 2,
    'the forged mail refused',
  );
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(f.smtp.messages.length, sentBefore);
});

test('a scheduled task opens a thread with its recipient, and their reply continues it', async () => {
  const sentBefore = f.smtp.messages.length;
  assert.equal(await f.gateway.runSchedule('app', 'digest'), 'started');
  await eventually(async () => {
    const ds = await f.store.listDeliveries({});
    const d = ds.find((x) => x.attempts > 0 || x.state !== 'pending');
    if (d?.lastError) throw new Error(d.lastError);
    return f.smtp.messages.length > sentBefore;
  }, 'the scheduled thread to open');
  const first = f.smtp.messages[sentBefore];
  assert.deepEqual(first!.to, ['bob@team.test']);
  const opened = await PostalMime.parse(first!.raw);
  assert.match(opened.subject ?? '', /^Scheduled: digest \[errand:[0-9a-f]{12}\]$/);
  assert.match(opened.text ?? '', /summarize open issues/);
  await f.imap.append(
    await buildMail({
      from: 'Bob Ä. <bob@team.test>',
      subject: `Re: ${opened.subject}`,
      inReplyTo: opened.messageId,
      references: opened.messageId,
      text: 'Thanks — now fix the first one.',
      prepend: [passingAuthResults('team.test')],
    }),
  );
  await eventually(() => runs().length === 2, 'the reply to run');
  assert.equal(runs()[1]!.conversation.id, runs()[0]!.conversation.id);
  assert.equal(runs()[1]!.parts[0]!.sender, 'Bob Ä.', 'encoded display names are decoded');
});
