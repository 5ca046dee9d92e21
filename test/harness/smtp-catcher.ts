/**
 * A real SMTP server (smtp-server) on loopback that keeps what errand sends, requires
 * login, and can refuse the next sends with a temporary error to exercise retries.
 */
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface CaughtMail {
  from: string;
  to: string[];
  raw: string;
}

export class SmtpCatcher {
  readonly messages: CaughtMail[] = [];
  readonly user = 'errand@example.com';
  readonly password = 'smtp-secret';
  port = 0;
  #refuse = 0;
  refused = 0;
  readonly #server: SMTPServer;

  /**
   * tls: implicit TLS on connect; starttls: plain until STARTTLS, and login only after it;
   * none (the default): no STARTTLS offered at all.
   */
  constructor(o: { security?: 'tls' | 'starttls' | 'none'; key?: Buffer; cert?: Buffer } = {}) {
    const security = o.security ?? 'none';
    this.#server = new SMTPServer({
      secure: security === 'tls',
      key: o.key,
      cert: o.cert,
      disabledCommands: security === 'none' ? ['STARTTLS'] : [],
      allowInsecureAuth: security === 'none',
      authOptional: false,
      logger: false,
      onAuth: (auth, _session, cb) =>
        auth.username === this.user && auth.password === this.password
          ? cb(null, { user: auth.username })
          : cb(new Error('invalid login')),
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          if (this.#refuse > 0) {
            this.#refuse--;
            this.refused++;
            const e = new Error('try again later') as Error & { responseCode: number };
            e.responseCode = 451;
            cb(e);
            return;
          }
          this.messages.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks).toString(),
          });
          cb();
        });
      },
    });
    this.#server.on('error', () => undefined);
  }

  /** port: where to listen (a free one when 0, the default). */
  static async start(
    o: ConstructorParameters<typeof SmtpCatcher>[0] & { port?: number } = {},
  ): Promise<SmtpCatcher> {
    const c = new SmtpCatcher(o);
    await new Promise<void>((resolve) => c.#server.listen(o.port ?? 0, '127.0.0.1', resolve));
    c.port = (c.#server.server.address() as AddressInfo).port;
    return c;
  }

  /** Answers the next `n` messages with 451 (try again later). */
  refuseNext(n: number): void {
    this.#refuse = n;
  }

  async waitFor(n: number, timeoutMs = 15_000): Promise<CaughtMail[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.messages.length < n) {
      if (Date.now() > deadline) {
        throw new Error(`expected ${n} mails, got ${this.messages.length}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    return this.messages;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
