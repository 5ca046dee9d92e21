/**
 * Test mail as real senders produce it: built by nodemailer's composer, DKIM-signed by
 * mailauth with a key whose public half is served by a fake DNS, so the email channel's
 * sender checks run exactly as they would against the real DNS.
 */
import { generateKeyPairSync } from 'node:crypto';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';

export interface MailSpec {
  from: string;
  to?: string;
  cc?: string;
  subject?: string;
  text?: string;
  html?: string;
  messageId?: string;
  inReplyTo?: string;
  references?: string;
  attachments?: Array<{ filename: string; content: Buffer | string; contentType?: string }>;
  /** Raw header lines put on top, e.g. a forged Authentication-Results or a second From. */
  prepend?: string[];
}

let seq = 0;

/** An RFC 5322 message (CRLF line ends). */
export async function buildMail(spec: MailSpec): Promise<string> {
  const composer = new MailComposer({
    from: spec.from,
    to: spec.to ?? 'errand@example.com',
    cc: spec.cc,
    subject: spec.subject ?? 'A task',
    text: spec.text ?? 'Please do the thing.',
    html: spec.html,
    messageId: spec.messageId ?? `<test-${process.pid}-${++seq}-${Date.now()}@sender.test>`,
    inReplyTo: spec.inReplyTo,
    references: spec.references,
    attachments: spec.attachments,
  });
  const raw = (await composer.compile().build()).toString();
  return (spec.prepend ?? []).map((l) => `${l}\r\n`).join('') + raw;
}

export interface SigningDomain {
  domain: string;
  selector: string;
  privateKey: string;
  /** DNS records for this domain: DKIM key, DMARC policy (unless `dmarc: null`), SPF. */
  records: Record<string, string[]>;
}

/** A domain with a fresh key pair; `dmarc: null` publishes no DMARC record. */
export function signingDomain(
  domain: string,
  opts: { dmarc?: string | null; selector?: string } = {},
): SigningDomain {
  const selector = opts.selector ?? 'test';
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const p = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  const records: Record<string, string[]> = {
    [`${selector}._domainkey.${domain}`]: [`v=DKIM1; k=rsa; p=${p}`],
    [domain]: ['v=spf1 ip4:127.0.0.1 -all'],
  };
  const dmarc = opts.dmarc === undefined ? 'v=DMARC1; p=reject' : opts.dmarc;
  if (dmarc) records[`_dmarc.${domain}`] = [dmarc];
  return {
    domain,
    selector,
    privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    records,
  };
}

/** The message with a DKIM-Signature of `d` on top. */
export async function sign(raw: string, d: SigningDomain): Promise<string> {
  const r = (await dkimSign(raw, {
    canonicalization: 'relaxed/relaxed',
    signatureData: [{ signingDomain: d.domain, selector: d.selector, privateKey: d.privateKey }],
  })) as { signatures: string; errors: unknown[] };
  if (r.errors.length) throw new Error(`signing failed: ${JSON.stringify(r.errors)}`);
  return r.signatures + raw;
}

/** A resolver in the shape mailauth calls (`dns.promises.resolve`), answering from records. */
export function fakeDns(...domains: SigningDomain[]) {
  const txt = new Map<string, string[]>();
  for (const d of domains) for (const [k, v] of Object.entries(d.records)) txt.set(k, v);
  return async (name: string, rrtype: string): Promise<unknown> => {
    const values = rrtype === 'TXT' ? txt.get(name.toLowerCase()) : undefined;
    if (!values) {
      const e = new Error(`queryTxt ENOTFOUND ${name}`) as Error & { code: string };
      e.code = rrtype === 'TXT' && txt.has(name.toLowerCase()) ? 'ENODATA' : 'ENOTFOUND';
      throw e;
    }
    return values.map((v) => [v]);
  };
}
