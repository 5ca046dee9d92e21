/**
 * Sends mail through the repository's SMTP server. One pooled connection is kept open
 * between sends; a failure throws, and the gateway's outbox retries with backoff.
 */
import nodemailer, { type Transporter } from 'nodemailer';

export interface SmtpOptions {
  host: string;
  port: number;
  security: 'tls' | 'starttls' | 'none';
  user: string;
  password: string;
}

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
  attachments: Array<{ filename: string; path: string }>;
}

export class SmtpSender {
  readonly #transport: Transporter;

  constructor(o: SmtpOptions) {
    this.#transport = nodemailer.createTransport({
      host: o.host,
      port: o.port,
      secure: o.security === 'tls',
      requireTLS: o.security === 'starttls',
      ignoreTLS: o.security === 'none',
      auth: { user: o.user, pass: o.password },
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
      headers: { 'Auto-Submitted': 'auto-replied' },
    });
  }

  close(): void {
    this.#transport.close();
  }
}
