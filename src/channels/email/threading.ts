/**
 * How mail finds its conversation. errand's own Message-IDs carry the conversation's tag,
 * so a reply to any mail errand sent names its conversation in In-Reply-To or References.
 * Other Message-IDs of the thread are recorded as keys too (a person's reply to a reply),
 * and a `[errand:TAG]` subject tag is the last resort for clients that drop References.
 */
import { createHash } from 'node:crypto';
import { messageIds } from './raw-headers.ts';

const TAG = /^[0-9a-f]{12}$/;

/**
 * The conversation tag of a thread key: short, stable, not guessable from the subject. A
 * thread errand opened itself (a schedule) is keyed by its tag already.
 */
export function conversationTag(threadKey: string): string {
  const own = threadKey.startsWith('tag:') ? threadKey.slice(4) : '';
  if (TAG.test(own)) return own;
  return createHash('sha256').update(threadKey).digest('hex').slice(0, 12);
}

export function tagKey(tag: string): string {
  return `tag:${tag}`;
}

export function messageIdKey(id: string): string {
  return `mid:${id.toLowerCase()}`;
}

/** A Message-ID for mail errand sends; the same delivery always gets the same id. */
export function errandMessageId(tag: string, deliveryId: string, domain: string): string {
  return `errand.${tag}.${deliveryId}@${domain}`;
}

function tagOfErrandId(id: string): string | undefined {
  const m = id.match(/^errand\.([0-9a-f]{12})\./);
  return m && TAG.test(m[1]!) ? m[1] : undefined;
}

/** Adds the subject tag unless it is there already. */
export function taggedSubject(subject: string, tag: string): string {
  const base = subject.trim() || 'errand';
  return base.includes(`[errand:${tag}]`) ? base : `${base} [errand:${tag}]`;
}

/** `Re: …` unless the subject already starts with a reply prefix. */
export function replySubject(subject: string): string {
  const s = subject.trim();
  return /^(re|aw|sv|antw|vs)\s*:/i.test(s) ? s : `Re: ${s}`;
}

export interface ThreadHeaders {
  messageId?: string;
  inReplyTo?: string;
  references?: string;
  subject?: string;
}

/**
 * The thread keys of an incoming message, most specific first, and the key a new thread
 * is recorded under (its own Message-ID).
 */
export function threadKeysOf(h: ThreadHeaders): { keys: string[]; own: string } {
  const linked = [...messageIds(h.inReplyTo), ...messageIds(h.references).reverse()];
  const keys: string[] = [];
  for (const id of linked) {
    const tag = tagOfErrandId(id);
    if (tag) keys.push(tagKey(tag));
  }
  for (const id of linked) keys.push(messageIdKey(id));
  const subjectTag = h.subject?.match(/\[errand:([0-9a-f]{12})\]/)?.[1];
  if (subjectTag) keys.push(tagKey(subjectTag));
  const own = messageIdKey(messageIds(h.messageId)[0] ?? h.messageId ?? '');
  return { keys: [...new Set(keys)], own };
}
