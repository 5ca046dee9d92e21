/**
 * errand's email side in a process of its own, for tests that need the process's
 * environment (NODE_EXTRA_CA_CERTS is read only at start).
 *
 *   node email-child.ts probe DIR   logs in as `errand check` does; prints the problems
 *   node email-child.ts send DIR    sends one mail with the channel's SMTP sender; prints
 *                                   "sent" or the error's message, as JSON
 *   node email-child.ts serve DIR   runs the gateway with the email channel of repo "app"
 *                                   and a scripted executor; prints "started"
 *
 * DIR holds errand.yaml; the store is put there.
 */
import { join } from 'node:path';
import { EmailChannel, probeEmail } from '../../src/channels/email/index.ts';
import { SmtpSender } from '../../src/channels/email/smtp-sender.ts';
import { loadServerConfig } from '../../src/config/index.ts';
import { Gateway } from '../../src/gateway/index.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { ScriptedExecutor } from './scripted-executor.ts';

const [mode, dir] = process.argv.slice(2) as [string, string];
const loaded = await loadServerConfig({ path: join(dir, 'errand.yaml'), env: {} });
if (loaded.status !== 'ok') throw new Error(`bad config: ${JSON.stringify(loaded)}`);
const email = loaded.config.repos.app?.email;
if (!email) throw new Error('repo "app" has no email');

if (mode === 'probe') {
  process.stdout.write(`${JSON.stringify(await probeEmail(email, 5_000))}\n`);
  process.exit(0);
}
if (mode === 'send') {
  const sender = new SmtpSender({ ...email.smtp, password: email.smtp.password.reveal() });
  const outcome = await sender
    .send({
      from: email.address,
      to: 'alice@sender.test',
      cc: [],
      subject: 'from the sender',
      messageId: 'd_child@example.com',
      references: [],
      text: 'Sent by the SMTP sender.',
      html: '<p>Sent by the SMTP sender.</p>',
      attachments: [],
    })
    .then(
      () => 'sent',
      (e: Error) => e.message,
    );
  sender.close();
  process.stdout.write(`${JSON.stringify(outcome)}\n`);
  process.exit(0);
}
const gateway = new Gateway({
  store: openSqliteStore(join(dir, 'state.db')),
  executor: new ScriptedExecutor(),
  config: loaded.config,
  logger: silentLogger(),
  channelFactory: (repoId, repo) => [
    new EmailChannel(repoId, repo.email!, {
      logger: silentLogger(),
      attachmentsDir: join(dir, 'attachments'),
    }),
  ],
});
await gateway.start();
process.stdout.write(`${JSON.stringify({ ev: 'started' })}\n`);
