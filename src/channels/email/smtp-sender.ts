/**
 * Sends mail through the repository's SMTP server. One pooled connection is kept open
 * between sends; a failure throws, and the gateway's outbox retries with backoff.
 */
import { connect, type Socket } from 'node:net';
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
      getSocket: (_options, done) => done(null, { connection: tcpWithoutNagle(o) }),
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

/**
 * The TCP connection to the SMTP server, with Nagle's algorithm off. nodemailer leaves it
 * on, and SMTP writes a few small segments per mail (the envelope commands, the message's
 * last bytes) that then wait for the server's delayed ACK: about 40 ms per mail, nearly
 * all of a backlog's drain time (docs/gateway.md, memory under a backlog).
 *
 * Handed to nodemailer still connecting, as its `connection`: nodemailer then does all it
 * does on a socket of its own — the implicit TLS handshake or STARTTLS, with
 * `smtpOptions`' CAs and the host as servername — and keeps its timeouts: the connection
 * timeout until the implicit TLS handshake is done, the greeting timeout (without implicit
 * TLS it covers the TCP connect too), the socket timeout. A failure to connect reaches
 * nodemailer as the socket's error, and its pool frees the connection's slot; an error
 * handed to getSocket's callback would keep that slot taken for good (nodemailer 8; see
 * test/channels/email/smtp-unreachable.test.ts).
 */
function tcpWithoutNagle(o: MailServer): Socket {
  return connect({ host: o.host, port: o.port, noDelay: true, keepAlive: true });
}
