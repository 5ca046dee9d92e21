import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import type { EmailConfig } from './email-channel.ts';
import { describeCertificateFailure, imapOptions, smtpOptions } from './mail-servers.ts';

/**
 * Logs in to the repository's IMAP server (opening its folder) and SMTP server, for
 * `errand check`. Returns what failed, in words for the operator; empty when both work.
 */
export async function probeEmail(c: EmailConfig, timeoutMs = 15_000): Promise<string[]> {
  const problems: string[] = [];
  const imap = new ImapFlow({
    ...imapOptions({ ...c.imap, password: c.imap.password.reveal() }),
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
  });
  imap.on('error', () => undefined);
  try {
    await imap.connect();
    await imap.mailboxOpen(c.imap.folder, { readOnly: true });
    await imap.logout();
  } catch (e) {
    imap.close();
    const r = e as Error & { responseText?: string; authenticationFailed?: boolean };
    problems.push(
      `IMAP ${c.imap.host}:${c.imap.port}: ${r.authenticationFailed ? 'login refused' : (describeCertificateFailure(e, c.imap.host) ?? r.responseText ?? r.message)}`,
    );
  }
  const smtp = nodemailer.createTransport({
    ...smtpOptions({ ...c.smtp, password: c.smtp.password.reveal() }),
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
  });
  try {
    await smtp.verify();
  } catch (e) {
    const r = e as Error & { code?: string };
    problems.push(
      `SMTP ${c.smtp.host}:${c.smtp.port}: ${r.code === 'EAUTH' ? 'login refused' : (describeCertificateFailure(e, c.smtp.host) ?? r.message)}`,
    );
  } finally {
    smtp.close();
  }
  return problems;
}
