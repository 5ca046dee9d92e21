import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DovecotServer } from '../../harness/dovecot-server.ts';
import { passingAuthResults } from '../../harness/email-fixture.ts';
import { buildMail } from '../../harness/signed-mail.ts';
import { SmtpCatcher } from '../../harness/smtp-catcher.ts';
import { issueTestCertificates, type TestCertificates } from '../../harness/test-certificates.ts';

// Real mail servers speak TLS: implicit (993, 465) or STARTTLS (143, 587). errand runs in a
// child here so the test CA can be trusted the way an operator would, NODE_EXTRA_CA_CERTS.
const CHILD = fileURLToPath(new URL('../../harness/email-child.ts', import.meta.url));
const run = promisify(execFile);

type Security = 'tls' | 'starttls' | 'none';
let dir: string;
let certs: TestCertificates;
let imap: DovecotServer;
let imapPlain: DovecotServer;
const smtp: Partial<Record<Security, SmtpCatcher>> = {};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'errand-mail-tls-'));
  certs = issueTestCertificates(dir);
  const key = readFileSync(certs.keyFile);
  const cert = readFileSync(certs.certFile);
  [imap, imapPlain, smtp.tls, smtp.starttls, smtp.none] = await Promise.all([
    DovecotServer.start(undefined, { tls: certs }),
    DovecotServer.start(),
    SmtpCatcher.start({ security: 'tls', key, cert }),
    SmtpCatcher.start({ security: 'starttls', key, cert }),
    SmtpCatcher.start(),
  ]);
});
after(async () => {
  await Promise.all([
    imap?.close(),
    imapPlain?.close(),
    ...Object.values(smtp).map((s) => s.close()),
  ]);
  rmSync(dir, { recursive: true, force: true });
});

/** A config folder for repo "app" with the given ways to reach the servers. */
function configDir(o: {
  imap: Security;
  smtp: Security;
  imapServer?: DovecotServer;
  smtpServer?: SmtpCatcher;
}): string {
  const server = o.imapServer ?? imap;
  const imapPort = o.imap === 'tls' ? server.tlsPort : server.port;
  const s = o.smtpServer ?? smtp[o.smtp]!;
  const d = mkdtempSync(join(dir, 'cfg-'));
  writeFileSync(
    join(d, 'errand.yaml'),
    `repos:
  app:
    git_url: /srv/app.git
    email:
      address: errand@example.com
      imap: { host: localhost, port: ${imapPort}, security: ${o.imap}, user: errand@example.com, password: ${server.users[0]!.password} }
      smtp: { host: localhost, port: ${s.port}, security: ${o.smtp}, user: ${s.user}, password: ${s.password} }
      authorized_senders: [alice@sender.test]
      trusted_authserv_id: mx.example.com
`,
  );
  return d;
}

/** trust: where errand finds the test CA; the system store is OpenSSL's SSL_CERT_FILE/DIR. */
async function probe(cfg: string, trust: 'extra' | 'system' | 'none' = 'extra'): Promise<string[]> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_EXTRA_CA_CERTS: trust === 'extra' ? certs.caFile : '',
  };
  if (trust === 'system') Object.assign(env, { SSL_CERT_FILE: certs.caFile, SSL_CERT_DIR: dir });
  const { stdout } = await run(process.execPath, [CHILD, 'probe', cfg], { env });
  return JSON.parse(stdout) as string[];
}

/** Sends one mail with the email channel's SMTP sender; "sent" or the error's message. */
async function send(cfg: string, trust: 'extra' | 'none' = 'extra'): Promise<string> {
  const env = { ...process.env, NODE_EXTRA_CA_CERTS: trust === 'extra' ? certs.caFile : '' };
  const { stdout } = await run(process.execPath, [CHILD, 'send', cfg], { env });
  return JSON.parse(stdout) as string;
}

describe('mail servers over TLS', () => {
  it('logs in with implicit TLS and with STARTTLS, for IMAP and SMTP', async () => {
    assert.deepEqual(await probe(configDir({ imap: 'tls', smtp: 'tls' })), []);
    assert.deepEqual(await probe(configDir({ imap: 'starttls', smtp: 'starttls' })), []);
  });

  it("trusts a CA installed in the operating system's store", async () => {
    assert.deepEqual(await probe(configDir({ imap: 'tls', smtp: 'tls' }), 'system'), []);
  });

  it('refuses a certificate its CAs do not vouch for, and says so', async () => {
    const problems = await probe(configDir({ imap: 'tls', smtp: 'starttls' }), 'none');
    assert.equal(problems.length, 2, problems.join('\n'));
    for (const [i, kind] of ['IMAP', 'SMTP'].entries())
      assert.match(
        problems[i]!,
        new RegExp(
          `^${kind} localhost:\\d+: its certificate does not lead to a CA errand trusts .*NODE_EXTRA_CA_CERTS=`,
        ),
      );
  });

  it('never falls back to plain text when a starttls server does not offer STARTTLS', async () => {
    const noImapStarttls = await probe(
      configDir({ imap: 'starttls', smtp: 'starttls', imapServer: imapPlain }),
    );
    assert.equal(noImapStarttls.length, 1, noImapStarttls.join('\n'));
    assert.match(noImapStarttls[0]!, /^IMAP localhost:\d+: /);
    const noSmtpStarttls = await probe(
      configDir({ imap: 'tls', smtp: 'starttls', smtpServer: smtp.none }),
    );
    assert.equal(noSmtpStarttls.length, 1, noSmtpStarttls.join('\n'));
    assert.match(noSmtpStarttls[0]!, /^SMTP localhost:\d+: /);
  });

  // The sender opens its own TCP connection (without Nagle's algorithm) and hands it to
  // nodemailer, which does the TLS; these hold that path to what the probe holds.
  it('sends mail with implicit TLS and with STARTTLS', async () => {
    for (const security of ['tls', 'starttls'] as const) {
      const before = smtp[security]!.messages.length;
      assert.equal(await send(configDir({ imap: 'tls', smtp: security })), 'sent', security);
      const caught = smtp[security]!.messages.slice(before);
      assert.equal(caught.length, 1, security);
      assert.match(caught[0]!.raw, /Sent by the SMTP sender\./);
    }
  });

  it('sends nothing to a server whose certificate its CAs do not vouch for', async () => {
    for (const security of ['tls', 'starttls'] as const) {
      const before = smtp[security]!.messages.length;
      const outcome = await send(configDir({ imap: 'tls', smtp: security }), 'none');
      assert.notEqual(outcome, 'sent', security);
      assert.match(outcome, /certificate/i, security);
      assert.equal(
        smtp[security]!.messages.length,
        before,
        `nothing reached the ${security} server`,
      );
    }
  });

  it('never sends in plain text to a starttls server that does not offer STARTTLS', async () => {
    const before = smtp.none!.messages.length;
    const outcome = await send(configDir({ imap: 'tls', smtp: 'starttls', smtpServer: smtp.none }));
    assert.notEqual(outcome, 'sent');
    assert.match(outcome, /STARTTLS/);
    assert.equal(smtp.none!.messages.length, before, 'nothing reached the server');
  });

  it('receives a task over IMAPS and sends the reply over SMTPS', async () => {
    const cfg = configDir({ imap: 'tls', smtp: 'tls' });
    const before = smtp.tls!.messages.length;
    const child: ChildProcess = spawn(process.execPath, [CHILD, 'serve', cfg], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: certs.caFile },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`the child exited ${code}`)));
      });
      await imap.append(
        await buildMail({
          from: 'alice@sender.test',
          subject: 'over tls',
          text: 'Please do the thing.',
          prepend: [passingAuthResults('sender.test')],
        }),
      );
      const mails = (await smtp.tls!.waitFor(before + 2)).slice(before);
      assert.deepEqual(
        mails.map((m) => m.to),
        [['alice@sender.test'], ['alice@sender.test']],
        'the acknowledgement and the reply',
      );
      assert.match(mails[1]!.raw, /done: alice@sender\.test: Please do the thing\./);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
