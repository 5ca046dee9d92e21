/**
 * Mail that a machine sent: out-of-office and vacation replies, bounces and read receipts,
 * mailing-list and bulk mail. errand is an automatic responder itself, so answering any of
 * these runs an agent for nobody, and two responders answering each other never stop
 * (RFC 3834 §2). Each rule reads the raw header fields, as the sender checks do.
 *
 * Not a rule: `X-Auto-Response-Suppress`. It asks responders not to answer, and Exchange
 * puts it on ordinary mail too; a filter on it loses people's messages.
 */
import { headerValues, type RawHeader } from './raw-headers.ts';

interface AutomaticMailRule {
  /** The header field, as it is written. */
  field: string;
  /** Whether this value marks the mail as sent by a machine (lower case, comments removed). */
  automatic: (value: string) => boolean;
  /** What the stored reason says the mail is. */
  is: string;
}

/**
 * The rules, in order; the first that matches names the reason. One test per row in
 * test/channels/email/automatic-mail.test.ts.
 */
export const AUTOMATIC_MAIL_RULES: readonly AutomaticMailRule[] = [
  {
    // RFC 3834 §5: auto-generated, auto-replied, auto-notified and later extensions;
    // only `no` says a person sent it. errand's own replies carry `auto-replied`.
    field: 'Auto-Submitted',
    automatic: (v) => token(v) !== '' && token(v) !== 'no',
    is: 'an automatic reply or notification',
  },
  {
    // The older custom (RFC 2076 §3.9) that vacation programs and list servers still use.
    field: 'Precedence',
    automatic: (v) => ['bulk', 'junk', 'list', 'auto_reply'].includes(token(v)),
    is: 'bulk, list or automatic mail',
  },
  {
    // Vacation programs that predate RFC 3834.
    field: 'X-Autoreply',
    automatic: (v) => token(v) === 'yes',
    is: 'an automatic reply',
  },
  {
    field: 'X-Autorespond',
    automatic: (v) => token(v) !== '',
    is: 'an automatic reply',
  },
  {
    // Distributed by a mailing list (RFC 2919): every member of the list could start tasks.
    field: 'List-Id',
    automatic: (v) => v !== '',
    is: 'mailing-list mail',
  },
  {
    // Newsletters and notification services (RFC 2369, RFC 8058).
    field: 'List-Unsubscribe',
    automatic: (v) => v !== '',
    is: 'bulk mail',
  },
  {
    // Bounces (RFC 3464) and read receipts (RFC 8098) are multipart/report (RFC 6522).
    field: 'Content-Type',
    automatic: (v) => token(v) === 'multipart/report',
    is: 'a delivery or read report',
  },
];

/**
 * Why the mail was sent by a machine, naming the header field and its value, or undefined
 * for a person's mail.
 */
export function automaticMail(headers: RawHeader[]): string | undefined {
  for (const rule of AUTOMATIC_MAIL_RULES) {
    for (const raw of headerValues(headers, rule.field)) {
      const value = withoutComments(raw).trim().toLowerCase();
      if (rule.automatic(value)) {
        return `${rule.is} (${rule.field}: ${clipValue(raw)}); errand does not answer machines`;
      }
    }
  }
  return undefined;
}

/** The value's first token: before parameters (`;`) and whitespace. */
function token(value: string): string {
  return value.split(';')[0]!.trim().split(/\s+/)[0] ?? '';
}

/** RFC 5322 comments, e.g. `auto-replied (vacation)`. */
function withoutComments(value: string): string {
  return value.replace(/\([^()]*\)/g, ' ');
}

/** The value as the reason shows it: short, one line. */
function clipValue(value: string): string {
  const one = value.replace(/\s+/g, ' ').trim();
  return one.length > 60 ? `${one.slice(0, 60)}…` : one;
}
