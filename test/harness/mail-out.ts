/**
 * What a delivery becomes as mail: the real email channel, configured to send only (its
 * mailbox is never watched), answering a mail from alice, caught by the SMTP catcher.
 */
import type { EmailChannel } from '../../src/channels/email/index.ts';
import type { Delivery, StoredMessage } from '../../src/domain/index.ts';
import type { SmtpCatcher } from './smtp-catcher.ts';

/** The `email:` block of a repository (indent 4) whose replies go to `smtp`. */
export function sendingEmailYaml(smtp: SmtpCatcher): string {
  return `    email:\n      address: errand@example.com\n      imap: { host: 127.0.0.1, port: 1, security: none, user: u, password: p }\n      smtp: { host: 127.0.0.1, port: ${smtp.port}, security: none, user: ${smtp.user}, password: ${smtp.password} }\n      authorized_senders: [alice@sender.test]\n      trusted_authserv_id: mx.example.com\n`;
}

const FROM_ALICE = {
  channel: 'email',
  ownThreadKey: '<m1@sender.test>',
  sender: { id: 'alice@sender.test' },
  meta: { auth: 'pass', messageId: '<m1@sender.test>', references: [], subject: 'Hi', others: [] },
} as unknown as StoredMessage;

/** Sends `d` through `channel` and returns the mail as it went over SMTP. */
export async function mailFor(
  channel: EmailChannel,
  smtp: SmtpCatcher,
  d: Delivery,
): Promise<string> {
  const n = smtp.messages.length;
  await channel.deliver(d, { replyTo: FROM_ALICE });
  return (await smtp.waitFor(n + 1))[n]!.raw;
}
