import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { SmtpSender } from '../../../src/channels/email/smtp-sender.ts';
import { SmtpCatcher } from '../../harness/smtp-catcher.ts';

// The sender connects on its own (src/channels/email/smtp-sender.ts) and hands nodemailer's
// pool the socket; a failure to connect must free the pool's connection slot, or a server
// that was down for a while would block every later send.

const mail = (n: number) => ({
  from: 'errand@example.com',
  to: 'alice@sender.test',
  cc: [],
  subject: `mail ${n}`,
  messageId: `d_${n}@example.com`,
  references: [],
  text: `mail ${n}`,
  html: `<p>mail ${n}</p>`,
  attachments: [],
});

/** A loopback port nothing listens on (free a moment ago). */
async function closedPort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

describe('the SMTP sender', () => {
  it('sends again once an unreachable SMTP server answers, after more failed connections than its pool holds', async () => {
    const port = await closedPort();
    const login = { user: 'errand@example.com', password: 'smtp-secret' };
    const sender = new SmtpSender({ host: '127.0.0.1', port, security: 'none', ...login });
    let smtp: SmtpCatcher | undefined;
    try {
      for (let n = 0; n < 3; n++) await assert.rejects(sender.send(mail(n)), /ECONNREFUSED/);
      smtp = await SmtpCatcher.start({ port });
      await sender.send(mail(3));
      assert.deepEqual(
        smtp.messages.map((m) => /^Subject: (.*)$/m.exec(m.raw)?.[1]),
        ['mail 3'],
        'the mail sent once the server answered, and only it',
      );
    } finally {
      sender.close();
      await smtp?.close();
    }
  });
});
