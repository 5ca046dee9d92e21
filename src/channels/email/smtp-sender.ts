/**
 * Sends mail through the repository's SMTP server. One pooled connection is kept open
 * between sends; a failure throws, and the gateway's outbox retries with backoff.
 */
import nodemailer, { type Transporter } from 'nodemailer';

import { type MailServer, smtpOptions } from './mail-servers.ts';

export interface OutgoingMail {
  from: string;
  to: string;
  cc: string[];
  subject: string;
  /** Without angle brackets. */
  messageId: string;
  inReplyTo?: string;
  references: string[];
  text: string;
  html: string;
  /** Read by errand (no path is handed to the mailer, which would follow links). */
  attachments: Array<{ filename: string; content: Buffer }>;
}

export class SmtpSender {
  readonly #transport: Transporter;

  constructor(o: MailServer) {
    this.#transport = nodemailer.createTransport({
      ...smtpOptions(o),
      pool: true,
      maxConnections: 2,
      connectionTimeout: 30_000,
      greetingTimeout: 30_000,
      socketTimeout: 60_000,
    });
  }

  async send(m: OutgoingMail): Promise<void> {
    await this.#transport.sendMail({
      from: m.from,
      to: m.to,
      cc: m.cc.length ? m.cc : undefined,
      subject: m.subject,
      messageId: `<${m.messageId}>`,
      inReplyTo: m.inReplyTo ? `<${m.inReplyTo}>` : undefined,
      references: m.references.length ? m.references.map((r) => `<${r}>`).join(' ') : undefined,
      text: m.text,
      html: m.html,
      attachments: m.attachments,
      // errand is an automatic responder: RFC 3834 §5 marks its mail so other responders
      // (another errand, a vacation program) do not answer it, and Exchange is asked not to
      // send out-of-office or other automatic replies to it.
      headers: { 'Auto-Submitted': 'auto-replied', 'X-Auto-Response-Suppress': 'OOF, AutoReply' },
    });
  }

  close(): void {
    this.#transport.close();
  }
}
