import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { StoredMessage } from '../../../src/domain/index.ts';
import {
  type EmailFixture,
  emailFixture,
  passingAuthResults,
  settledBySubject,
} from '../../harness/email-fixture.ts';
import { ScriptedExecutor } from '../../harness/scripted-executor.ts';
import {
  buildMail,
  fakeDns,
  type SigningDomain,
  sign,
  signingDomain,
} from '../../harness/signed-mail.ts';

/**
 * Every way of passing off mail as an authorized sender's, tried against the real channel
 * on a real IMAP server. Each refused mail must end `rejected` in the store, flagged as
 * handled on the server, with no task and no reply of any kind; the accepted one runs.
 */
interface Case {
  name: string;
  /** Builds the mail; `subject` identifies it in the store. */
  mail: (subject: string) => Promise<string>;
  accepted: boolean;
  /** What the stored reason must mention. */
  reason?: RegExp;
}

async function runCases(f: EmailFixture, executor: ScriptedExecutor, cases: Case[]) {
  const subjects = new Map<string, Case>();
  for (const [i, c] of cases.entries()) {
    const raw = await c.mail(`case ${i}`);
    subjects.set(`case ${i}`, c);
    await f.imap.append(raw);
  }
  const bySubject = await settledBySubject(f.store, cases.length);
  return { subjects, bySubject, executor };
}

function checkCase(c: Case, m: StoredMessage | undefined) {
  assert.ok(m, 'the mail is stored, whatever its fate');
  if (c.accepted) {
    assert.equal(m.state, 'answered');
    return;
  }
  assert.equal(m.state, 'rejected');
  assert.equal(m.taskId, undefined, 'no task');
  assert.equal(m.attachments.length, 0, 'nothing of a refused mail is saved');
  if (c.reason) assert.match(m.stateReason ?? '', c.reason);
}

describe('with a trusted receiving server (trusted_authserv_id)', () => {
  let f: EmailFixture;
  const executor = new ScriptedExecutor({ hang: false });
  const ar = passingAuthResults;
  const cases: Case[] = [
    {
      name: 'a DMARC pass with aligned DKIM from the trusted server is accepted',
      mail: (subject) =>
        buildMail({ from: 'alice@sender.test', subject, prepend: [ar('sender.test')] }),
      accepted: true,
    },
    {
      name: 'a forged From (DKIM of another domain, DMARC fail) is refused',
      mail: (subject) =>
        buildMail({
          from: 'alice@sender.test',
          subject,
          prepend: [
            'Authentication-Results: mx.example.com; dkim=pass header.d=evil.test; spf=pass smtp.mailfrom=evil.test; dmarc=fail (p=REJECT) header.from=sender.test',
          ],
        }),
      accepted: false,
      reason: /dmarc=fail/,
    },
    {
      name: 'DMARC none is refused',
      mail: (subject) =>
        buildMail({
          from: 'alice@sender.test',
          subject,
          prepend: [
            'Authentication-Results: mx.example.com; dkim=pass header.d=sender.test; dmarc=none header.from=sender.test',
          ],
        }),
      accepted: false,
      reason: /dmarc=none/,
    },
    {
      name: 'a DMARC pass that rests on SPF alone is refused',
      mail: (subject) =>
        buildMail({
          from: 'alice@sender.test',
          subject,
          prepend: [
            'Authentication-Results: mx.example.com; dkim=none; spf=pass smtp.mailfrom=sender.test; dmarc=pass (p=REJECT) header.from=sender.test',
          ],
        }),
      accepted: false,
      reason: /without an aligned DKIM/,
    },
    {
      name: 'a passing Authentication-Results added by the sender below the server’s own is ignored',
      mail: (subject) =>
        buildMail({
          from: 'alice@sender.test',
          subject,
          prepend: [
            'Authentication-Results: mx.example.com; dkim=fail header.d=sender.test; dmarc=fail header.from=sender.test',
            ar('sender.test'),
          ],
        }),
      accepted: false,
      reason: /dmarc=fail/,
    },
    {
      name: 'a passing Authentication-Results of another server is not trusted',
      mail: (subject) =>
        buildMail({
          from: 'alice@sender.test',
          subject,
          prepend: [ar('sender.test', 'mx.evil.test')],
        }),
      accepted: false,
      reason: /no Authentication-Results from mx\.example\.com/,
    },
    {
      name: 'two From fields are refused',
      mail: (subject) =>
        buildMail({
          from: 'alice@sender.test',
          subject,
          prepend: [ar('sender.test'), 'From: mallory@evil.test'],
        }),
      accepted: false,
      reason: /2 From header fields/,
    },
    {
      name: 'a From field with two addresses is refused',
      mail: async (subject) =>
        (
          await buildMail({ from: 'alice@sender.test', subject, prepend: [ar('sender.test')] })
        ).replace(/^From: .*$/m, 'From: alice@sender.test, mallory@evil.test'),
      accepted: false,
      reason: /exactly one address/,
    },
    {
      name: 'an authenticated sender who is not authorized is refused',
      mail: (subject) =>
        buildMail({ from: 'mallory@other.test', subject, prepend: [ar('other.test')] }),
      accepted: false,
      reason: /not in authorized_senders/,
    },
  ];
  let results: Awaited<ReturnType<typeof runCases>>;

  before(async () => {
    f = await emailFixture({ executor });
    results = await runCases(f, executor, cases);
  });
  after(() => f?.close());

  for (const [i, c] of cases.entries()) {
    test(c.name, () => checkCase(c, results.bySubject.get(`case ${i}`)));
  }

  test('refused mail gets no reply at all, and every mail is flagged as handled', async () => {
    const accepted = cases.filter((c) => c.accepted).length;
    // One acknowledgement and one answer per accepted mail, nothing else.
    await f.smtp.waitFor(accepted * 2);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(f.smtp.messages.length, accepted * 2);
    for (const m of f.smtp.messages) assert.deepEqual(m.to, ['alice@sender.test']);
    assert.equal(executor.runs.length, accepted);
    const onServer = await f.imap.messages();
    assert.equal(onServer.filter((m) => m.flags.includes('\\Seen')).length, cases.length);
  });
});

describe('with errand verifying DKIM and DMARC itself (verify_dkim)', () => {
  let f: EmailFixture;
  const executor = new ScriptedExecutor({ hang: false });
  const sender = signingDomain('sender.test');
  const noDmarc = signingDomain('team.test', { dmarc: null });
  const evil = signingDomain('evil.test');
  // Signed by the parent domain for a From of its subdomain: aligned only when relaxed.
  const strictParent = signingDomain('strict.test', { dmarc: 'v=DMARC1; p=reject; adkim=s' });
  const relaxedParent = signingDomain('relaxed.test');
  const signed = async (
    d: SigningDomain,
    from: string,
    subject: string,
    mutate = (s: string) => s,
  ) => mutate(await sign(await buildMail({ from, subject }), d));
  const cases: Case[] = [
    {
      name: 'mail DKIM-signed by the From domain, with a DMARC policy, is accepted',
      mail: (subject) => signed(sender, 'alice@sender.test', subject),
      accepted: true,
    },
    {
      name: 'a body changed after signing is refused',
      mail: (subject) =>
        signed(sender, 'alice@sender.test', subject, (s) =>
          s.replace('Please do the thing.', 'Please delete everything.'),
        ),
      accepted: false,
      reason: /dmarc=fail/,
    },
    {
      name: 'a From domain without a DMARC record is refused although its DKIM passes',
      mail: (subject) => signed(noDmarc, 'bob@team.test', subject),
      accepted: false,
      reason: /dmarc=none/,
    },
    {
      name: 'mail signed by another domain than its From is refused',
      mail: (subject) => signed(evil, 'alice@sender.test', subject),
      accepted: false,
      reason: /dmarc=fail/,
    },
    {
      name: 'mail signed by the parent domain is refused when the DMARC record demands strict alignment (adkim=s)',
      mail: (subject) => signed(strictParent, 'carol@sub.strict.test', subject),
      accepted: false,
      reason: /strict alignment \(adkim=s\)/,
    },
    {
      name: 'mail signed by the From domain itself passes strict alignment',
      mail: (subject) => signed(strictParent, 'dave@strict.test', subject),
      accepted: true,
    },
    {
      name: 'mail signed by the parent domain passes relaxed alignment',
      mail: (subject) => signed(relaxedParent, 'erin@sub.relaxed.test', subject),
      accepted: true,
    },
    {
      name: 'unsigned mail is refused',
      mail: (subject) => buildMail({ from: 'alice@sender.test', subject }),
      accepted: false,
      reason: /dmarc=fail/,
    },
    {
      name: 'an Authentication-Results header is ignored when no server is trusted',
      mail: (subject) =>
        buildMail({
          from: 'alice@sender.test',
          subject,
          prepend: [passingAuthResults('sender.test')],
        }),
      accepted: false,
    },
  ];
  let results: Awaited<ReturnType<typeof runCases>>;

  before(async () => {
    f = await emailFixture({
      executor,
      email: '      verify_dkim: true\n',
      resolver: fakeDns(sender, noDmarc, evil, strictParent, relaxedParent),
      authorizedSenders: [
        'alice@sender.test',
        '*@team.test',
        '*@sub.strict.test',
        '*@strict.test',
        '*@sub.relaxed.test',
      ],
    });
    results = await runCases(f, executor, cases);
  });
  after(() => f?.close());

  for (const [i, c] of cases.entries()) {
    test(c.name, () => checkCase(c, results.bySubject.get(`case ${i}`)));
  }

  test('only the authenticated mail ran', () => {
    assert.equal(executor.runs.length, cases.filter((c) => c.accepted).length);
  });
});
