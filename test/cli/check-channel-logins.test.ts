import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { formatChecks, runChecks } from '../../src/cli/check.ts';
import { tempHome } from '../harness/cli.ts';
import { DovecotServer } from '../harness/dovecot-server.ts';
import { SmtpCatcher } from '../harness/smtp-catcher.ts';

let imap: DovecotServer;
let smtp: SmtpCatcher;
before(async () => {
  [imap, smtp] = await Promise.all([DovecotServer.start(), SmtpCatcher.start()]);
});
after(async () => {
  await imap?.close();
  await smtp?.close();
});

async function channelsCheck(imapPassword: string, smtpPassword: string) {
  const { home, env } = tempHome();
  try {
    const path = join(home, 'errand.yaml');
    writeFileSync(
      path,
      `repos:
  app:
    git_url: ${home}
    email:
      address: errand@example.com
      imap: { host: 127.0.0.1, port: ${imap.port}, security: none, user: errand@example.com, password: ${imapPassword} }
      smtp: { host: 127.0.0.1, port: ${smtp.port}, security: none, user: ${smtp.user}, password: ${smtpPassword} }
      authorized_senders: [alice@example.com]
      trusted_authserv_id: mx.example.com
`,
    );
    const results = await runChecks({ configPath: path, env, cwd: home });
    return { check: results.find((r) => r.id === 'channels')!, text: formatChecks(results) };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

it('errand check logs in to the repository mailbox and SMTP server', async () => {
  const { check } = await channelsCheck(imap.users[0]!.password, smtp.password);
  assert.equal(check.status, 'ok', check.detail);
});

it('errand check names each login that fails, without showing the password', async () => {
  const { check, text } = await channelsCheck('wrong-imap-pass', 'wrong-smtp-pass');
  assert.equal(check.status, 'warn');
  assert.match(check.detail, /app email: IMAP 127\.0\.0\.1:\d+: login refused/);
  assert.match(check.detail, /app email: SMTP 127\.0\.0\.1:\d+: login refused/);
  assert.match(text, /fix: check the host, port, user and password/);
  assert.doesNotMatch(text, /wrong-imap-pass|wrong-smtp-pass/);
});
