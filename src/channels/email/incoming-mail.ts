/**
 * Turns a raw message into what the gateway needs: the new text (quotes stripped, HTML
 * converted), thread keys, attachments and the model asked for by subaddress.
 */
import { createHash } from 'node:crypto';
import PostalMime from 'postal-mime';
import { htmlToText } from './html-text.ts';
import { stripQuoted } from './quoted-text.ts';
import { headerValues, messageIds, type RawHeader } from './raw-headers.ts';
import { threadKeysOf } from './threading.ts';

export interface MailAttachment {
  /** As the sender named it (decoded, not yet made safe). */
  name: string | undefined;
  contentType: string;
  content: Uint8Array;
}

export interface IncomingMail {
  /** The Message-ID, or one made from the content when the message has none. */
  messageId: string;
  contentHash: string;
  subject: string;
  text: string;
  threadKeys: string[];
  ownThreadKey: string;
  references: string[];
  /** Other people the sender addressed (To and Cc, without errand's own address). */
  others: string[];
  attachments: MailAttachment[];
  model?: string;
}

const MODEL = /^[a-z0-9][a-z0-9.-]{0,63}$/i;

/** Parses a complete raw message addressed to `ownAddress`. */
export async function parseIncomingMail(
  raw: Buffer,
  headers: RawHeader[],
  ownAddress: string,
): Promise<IncomingMail> {
  const contentHash = createHash('sha256').update(raw).digest('hex');
  const mail = await PostalMime.parse(raw, { attachmentEncoding: 'arraybuffer' });
  const messageId =
    messageIds(headerValues(headers, 'message-id')[0])[0] ?? `no-id.${contentHash}@errand`;
  const inReplyTo = headerValues(headers, 'in-reply-to')[0];
  const referencesHeader = headerValues(headers, 'references')[0];
  const subject = (mail.subject ?? '').trim();
  const thread = threadKeysOf({
    messageId: `<${messageId}>`,
    inReplyTo,
    references: referencesHeader,
    subject,
  });
  const body = mail.text?.trim() ? mail.text : mail.html ? htmlToText(mail.html) : '';
  const recipients = [...(mail.to ?? []), ...(mail.cc ?? [])].flatMap((a) =>
    'group' in a && a.group ? a.group : [a],
  );
  const own = ownAddress.toLowerCase();
  const [ownLocal, ownDomain] = splitAddress(own);
  let model: string | undefined;
  const others: string[] = [];
  for (const r of recipients) {
    const address = (r as { address?: string }).address?.toLowerCase();
    if (!address) continue;
    const [local, domain] = splitAddress(address);
    const plus = local.indexOf('+');
    if (domain === ownDomain && (plus >= 0 ? local.slice(0, plus) : local) === ownLocal) {
      const sub = plus >= 0 ? local.slice(plus + 1) : '';
      if (sub && MODEL.test(sub)) model ??= sub;
      continue;
    }
    others.push(address);
  }
  return {
    messageId,
    contentHash,
    subject,
    text: stripQuoted(body),
    threadKeys: [...thread.keys],
    ownThreadKey: thread.own,
    references: [...messageIds(referencesHeader), ...messageIds(inReplyTo)].filter(
      (id, i, all) => all.indexOf(id) === i,
    ),
    others: [...new Set(others)],
    attachments: mail.attachments
      .filter((a) => a.disposition !== 'inline' || a.filename)
      .map((a) => ({
        name: a.filename ?? undefined,
        contentType: a.mimeType,
        content: new Uint8Array(a.content as ArrayBuffer),
      })),
    model,
  };
}

function splitAddress(a: string): [string, string] {
  const at = a.lastIndexOf('@');
  return [a.slice(0, at), a.slice(at + 1)];
}

/** What is kept of a message that could not be parsed: enough to store and refuse it. */
export function unreadableMail(raw: Buffer): IncomingMail {
  const contentHash = createHash('sha256').update(raw).digest('hex');
  return {
    messageId: `unreadable.${contentHash}@errand`,
    contentHash,
    subject: '',
    text: '',
    threadKeys: [],
    ownThreadKey: `mid:unreadable.${contentHash}@errand`,
    references: [],
    others: [],
    attachments: [],
  };
}
