import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { AUTOMATIC_MAIL_RULES } from '../../../src/channels/email/automatic-mail.ts';
import { headerValues, rawHeaders } from '../../../src/channels/email/raw-headers.ts';
import type { StoredMessage } from '../../../src/domain/index.ts';
import { DEFAULT_USER, DovecotServer } from '../../harness/dovecot-server.ts';
import {
  type EmailFixture,
  emailFixture,
  passingAuthResults,
  settledBySubject,
} from '../../harness/email-fixture.ts';
import { eventually } from '../../harness/gateway-fixture.ts';
import { ScriptedExecutor } from '../../harness/scripted-executor.ts';
import { buildMail } from '../../harness/signed-mail.ts';

/**
 * Mail that a machine sent, from senders who pass every check (DMARC, authorized_senders),
 * against the real channel on a real Dovecot: out-of-office replies, bounces, list mail,
 * and mail from errand's own mailboxes. Each must end `rejected` with the reason, with no
 * task and no reply of any kind; a person's mail beside them is answered. Without this an
 * auto-reply runs an agent, and two errand mailboxes answer each other forever.
 */
interface Case {
  name: string;
  /** The mail; `subject` identifies it in the store. */
  mail: (subject: string) => Promise<string>;
  accepted: boolean;
  reason?: RegExp;
}

const DOCS_USER = { user: 'errand-docs@team.test', password: 'docs-secret' };

/** Mail from `from`, as the trusted receiving server hands it over, with these fields on top. */
function person(from: string, fields: string[] = []) {
  const domain = from.replace(/.*@|>.*/g, '');
  return (subject: string) =>
    buildMail({ from, subject, prepend: [passingAuthResults(domain), ...fields] });
}

/** A bounce as a mail server of an authorized domain sends it: multipart/report (RFC 3464). */
async function bounce(subject: string): Promise<string> {
  return [
    passingAuthResults('team.test'),
    'From: Mail Delivery System <MAILER-DAEMON@team.test>',
    'To: errand@example.com',
    `Subject: ${subject}`,
    `Message-ID: <bounce-${process.pid}-${Date.now()}@team.test>`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain',
    '',
    'Your message could not be delivered to gone@team.test.',
    '--b1',
    'Content-Type: message/delivery-status',
    '',
    'Reporting-MTA: dns; mx.team.test',
    '',
    'Final-Recipient: rfc822; gone@team.test',
    'Action: failed',
    'Status: 5.1.1',
    '--b1--',
    '',
  ].join('\r\n');
}

/** One case per rule of AUTOMATIC_MAIL_RULES (checked below), then errand's own mailboxes. */
const ruleCases: Array<Case & { field: string }> = [
  {
    name: 'an out-of-office reply (Auto-Submitted: auto-replied) starts nothing',
    field: 'Auto-Submitted',
    mail: person('alice@sender.test', ['Auto-Submitted: auto-replied (vacation)']),
    accepted: false,
    reason: /automatic reply .*Auto-Submitted: auto-replied/,
  },
  {
    name: 'an automatic notification (Auto-Submitted: auto-generated) starts nothing',
    field: 'Auto-Submitted',
    mail: person('bob@team.test', ['Auto-Submitted: auto-generated']),
    accepted: false,
    reason: /Auto-Submitted: auto-generated/,
  },
  ...['bulk', 'junk', 'list', 'auto_reply'].map((value) => ({
    name: `a Precedence: ${value} mail starts nothing`,
    field: 'Precedence',
    mail: person('alice@sender.test', [`Precedence: ${value}`]),
    accepted: false,
    reason: new RegExp(`Precedence: ${value}`),
  })),
  {
    name: 'a vacation reply marked X-Autoreply: yes starts nothing',
    field: 'X-Autoreply',
    mail: person('alice@sender.test', ['X-Autoreply: yes']),
    accepted: false,
    reason: /X-Autoreply: yes/,
  },
  {
    name: 'an autoresponder mail marked X-Autorespond starts nothing',
    field: 'X-Autorespond',
    mail: person('alice@sender.test', ['X-Autorespond: Out of office']),
    accepted: false,
    reason: /X-Autorespond/,
  },
  {
    name: 'a mail distributed by a mailing list (List-Id) starts nothing',
    field: 'List-Id',
    mail: person('alice@sender.test', ['List-Id: Developers <dev.lists.team.test>']),
    accepted: false,
    reason: /mailing-list mail \(List-Id/,
  },
  {
    name: 'a newsletter (List-Unsubscribe) starts nothing',
    field: 'List-Unsubscribe',
    mail: person('bob@team.test', ['List-Unsubscribe: <mailto:unsubscribe@team.test>']),
    accepted: false,
    reason: /bulk mail \(List-Unsubscribe/,
  },
  {
    name: 'a bounce from an authorized domain’s mail server (multipart/report) starts nothing',
    field: 'Content-Type',
    mail: bounce,
    accepted: false,
    reason: /delivery or read report/,
  },
];

const cases: Case[] = [
  ...ruleCases,
  {
    name: 'a mail from errand’s own address starts nothing',
    mail: person('errand@example.com'),
    accepted: false,
    reason: /errand@example\.com, one of errand's own mailboxes/,
  },
  {
    name: 'a mail from errand’s own address with a +tag, in other case, starts nothing',
    mail: person('Errand+opus@Example.COM'),
    accepted: false,
    reason: /one of errand's own mailboxes/,
  },
  {
    name: 'a mail from another repository’s errand mailbox, whose domain is authorized, starts nothing',
    mail: person('errand-docs@team.test'),
    accepted: false,
    reason: /errand-docs@team\.test, one of errand's own mailboxes/,
  },
  {
    name: 'a person’s mail that says Auto-Submitted: no is answered',
    mail: person('alice@sender.test', ['Auto-Submitted: no']),
    accepted: true,
  },
  {
    name: 'a person’s Outlook mail asking for no automatic replies (X-Auto-Response-Suppress: All) is answered',
    mail: person('bob@team.test', ['X-Auto-Response-Suppress: All']),
    accepted: true,
  },
];

let imap: DovecotServer;
let f: EmailFixture;
const executor = new ScriptedExecutor({ hang: false });
let stored: Map<string, StoredMessage>;

before(async () => {
  imap = await DovecotServer.start([DEFAULT_USER, DOCS_USER]);
  f = await emailFixture({
    executor,
    imap,
    authorizedSenders: ['alice@sender.test', '*@team.test', '*@example.com', '*@peer.test'],
    // A second repository whose mailbox is in a domain the first one authorizes.
    otherRepos: `  docs:
    git_url: /srv/docs.git
    email:
      address: errand-docs@team.test
      imap: { host: 127.0.0.1, port: ${imap.port}, security: none, user: ${DOCS_USER.user}, password: ${DOCS_USER.password} }
      smtp: { host: 127.0.0.1, port: 1, security: none, user: errand@example.com, password: x }
      authorized_senders: ["*@example.com"]
      trusted_authserv_id: mx.example.com
`,
  });
  for (const [i, c] of cases.entries()) await imap.append(await c.mail(`case ${i}`));
  stored = await settledBySubject(f.store, cases.length);
});
after(async () => {
  await f?.close();
  await imap?.close();
});

test('every rule of AUTOMATIC_MAIL_RULES has a case here', () => {
  const covered = new Set(ruleCases.map((c) => c.field));
  for (const rule of AUTOMATIC_MAIL_RULES) assert.ok(covered.has(rule.field), rule.field);
});

for (const [i, c] of cases.entries()) {
  test(c.name, () => {
    const m = stored.get(`case ${i}`);
    assert.ok(m, 'the mail is stored, whatever its fate');
    if (c.accepted) {
      assert.equal(m.state, 'answered');
      return;
    }
    assert.equal(m.state, 'rejected');
    assert.match(m.stateReason ?? '', c.reason!);
    assert.equal(m.taskId, undefined, 'no task');
    assert.equal(m.text, '', 'nothing of it is kept');
  });
}

test('machine-sent mail gets no reply at all: only the people are answered', async () => {
  const accepted = cases.filter((c) => c.accepted).length;
  // An acknowledgement and an answer for each accepted mail, nothing else.
  await f.smtp.waitFor(accepted * 2);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(f.smtp.messages.length, accepted * 2);
  const to = new Set(f.smtp.messages.flatMap((m) => m.to));
  assert.deepEqual([...to].sort(), ['alice@sender.test', 'bob@team.test']);
  assert.equal(executor.runs.length, accepted);
});

test('two errand installations do not answer each other: errand’s replies say Auto-Submitted: auto-replied, and errand refuses such a reply', async () => {
  const reply = f.smtp.messages.at(-1)!;
  const headers = rawHeaders(reply.raw);
  assert.deepEqual(headerValues(headers, 'auto-submitted'), ['auto-replied']);
  assert.deepEqual(headerValues(headers, 'x-auto-response-suppress'), ['OOF, AutoReply']);
  // The same reply as another installation's mailbox sends it, in an authorized domain.
  const peer = `${passingAuthResults('peer.test')}\r\n${reply.raw.replace(
    /^From: .*$/m,
    'From: errand@peer.test',
  )}`;
  const sentBefore = f.smtp.messages.length;
  const runsBefore = executor.runs.length;
  await imap.append(peer);
  const m = await eventually(async () => {
    const all = await f.store.listMessages({ states: ['rejected'] });
    return all.find((x) => x.sender.id === 'errand@peer.test');
  }, 'the peer’s reply settled');
  assert.match(m.stateReason ?? '', /Auto-Submitted: auto-replied/);
  assert.equal(m.taskId, undefined, 'no task');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(f.smtp.messages.length, sentBefore, 'no answer to the peer');
  assert.equal(executor.runs.length, runsBefore, 'no agent ran');
});
