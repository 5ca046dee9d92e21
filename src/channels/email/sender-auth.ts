/**
 * Who really sent a message. Runs before anything else looks at the mail: exactly one From
 * address, a DMARC pass for its domain backed by an aligned DKIM signature, then the
 * repository's list of authorized senders. SPF alone never counts: it follows the envelope,
 * which forwarders and shared senders make meaningless for the person in From.
 */
import { Resolver } from 'node:dns/promises';
import { authenticate } from 'mailauth';
import addressparser from 'nodemailer/lib/addressparser/index.js';
import { decodeWords } from 'postal-mime';
import { headerValues, type RawHeader } from './raw-headers.ts';

export type SenderVerdict =
  | { ok: true; address: string; name?: string }
  /** `temporary`: DNS could not answer; try the message again later rather than reject it. */
  | { ok: false; reason: string; address?: string; temporary?: boolean };

/** A DNS lookup as mailauth calls it: `(name, 'TXT')` etc. */
export type DnsResolver = (name: string, rrtype: string) => Promise<unknown>;

export interface SenderAuthOptions {
  /** Trust the first Authentication-Results header carrying this authserv-id. */
  trustedAuthservId?: string;
  /** Verify DKIM and DMARC here (mailauth) instead of, or besides, trusting a header. */
  verifyDkim: boolean;
  /** Resolver for that verification; default: the system's, or `dnsServers`. */
  resolver?: DnsResolver;
  dnsServers?: string[];
  authorizedSenders: string[];
}

/** The single From address of a message, or why there is not exactly one. */
export function fromAddress(
  headers: RawHeader[],
): { ok: true; address: string; name?: string } | { ok: false; reason: string } {
  const froms = headerValues(headers, 'from');
  if (froms.length !== 1) return { ok: false, reason: `${froms.length} From header fields` };
  const parsed = addressparser(froms[0]!, { flatten: false });
  const mailboxes = parsed.filter((a) => !('group' in a && a.group));
  if (parsed.length !== 1 || mailboxes.length !== 1) {
    return { ok: false, reason: 'the From field must name exactly one address' };
  }
  const { address, name } = mailboxes[0] as { address: string; name: string };
  if (!/^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$/.test(address ?? '')) {
    return { ok: false, reason: 'the From address is malformed' };
  }
  return { ok: true, address: address.toLowerCase(), name: name ? decodeWords(name) : undefined };
}

/** Whether `address` matches one of the patterns: exact, or `*@domain`. */
export function isAuthorizedSender(address: string, patterns: string[]): boolean {
  const lower = address.toLowerCase();
  const domain = lower.slice(lower.lastIndexOf('@') + 1);
  return patterns.some((p) => {
    const pattern = p.toLowerCase();
    return pattern.startsWith('*@') ? pattern.slice(2) === domain : pattern === lower;
  });
}

/** Decides whether the message's sender is authenticated and authorized. */
export async function verifySender(
  raw: Buffer,
  headers: RawHeader[],
  opts: SenderAuthOptions,
): Promise<SenderVerdict> {
  const from = fromAddress(headers);
  if (!from.ok) return from;
  const domain = from.address.slice(from.address.lastIndexOf('@') + 1);
  const reasons: string[] = [];
  let authenticated = false;
  let temporary = false;
  if (opts.trustedAuthservId) {
    const r = dmarcFromTrustedHeader(headers, opts.trustedAuthservId, domain);
    if (r.ok) authenticated = true;
    else reasons.push(r.reason);
  }
  if (!authenticated && opts.verifyDkim) {
    const r = await dmarcByVerifying(raw, domain, resolverFor(opts));
    if (r.ok) authenticated = true;
    else {
      reasons.push(r.reason);
      temporary = r.temporary === true;
    }
  }
  if (!authenticated) {
    return { ok: false, address: from.address, reason: reasons.join('; '), temporary };
  }
  if (!isAuthorizedSender(from.address, opts.authorizedSenders)) {
    return { ok: false, address: from.address, reason: 'sender is not in authorized_senders' };
  }
  return from;
}

function resolverFor(opts: SenderAuthOptions): DnsResolver | undefined {
  if (opts.resolver) return opts.resolver;
  if (!opts.dnsServers?.length) return undefined;
  const r = new Resolver();
  r.setServers(opts.dnsServers);
  return (name, rrtype) => r.resolve(name, rrtype);
}

type Check = { ok: true } | { ok: false; reason: string; temporary?: boolean };

/** One `method=result` entry of an Authentication-Results header, with its properties. */
interface AuthResult {
  method: string;
  result: string;
  props: Map<string, string>;
}

/** Parses an Authentication-Results value (RFC 8601) into its authserv-id and results. */
export function parseAuthenticationResults(
  value: string,
): { authservId: string; results: AuthResult[] } | undefined {
  const cleaned = stripComments(value);
  const parts = cleaned.split(';').map((p) => p.trim());
  const authservId = parts.shift()?.split(/\s+/)[0]?.toLowerCase();
  if (!authservId) return undefined;
  const results: AuthResult[] = [];
  for (const part of parts) {
    const tokens = part.split(/\s+/).filter(Boolean);
    const head = tokens.shift();
    const m = head?.match(/^([a-z0-9_-]+)=([a-z0-9_-]+)$/i);
    if (!m) continue;
    const props = new Map<string, string>();
    for (const t of tokens) {
      const eq = t.indexOf('=');
      if (eq > 0) props.set(t.slice(0, eq).toLowerCase(), unquote(t.slice(eq + 1)).toLowerCase());
    }
    results.push({ method: m[1]!.toLowerCase(), result: m[2]!.toLowerCase(), props });
  }
  return { authservId, results };
}

function stripComments(value: string): string {
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '\\' && i + 1 < value.length) {
      if (depth === 0) out += c + value[i + 1];
      i++;
    } else if (c === '"' && depth === 0) {
      quoted = !quoted;
      out += c;
    } else if (c === '(' && !quoted) depth++;
    else if (c === ')' && !quoted && depth > 0) depth--;
    else if (depth === 0) out += c;
  }
  return out;
}

function unquote(v: string): string {
  return v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
}

/**
 * The first Authentication-Results field carrying the trusted authserv-id decides. The
 * receiving server adds its field on top, and RFC 8601 §5 has it remove fields claiming its
 * own id that arrived with the message, so one a sender forged sits below the real one.
 */
function dmarcFromTrustedHeader(headers: RawHeader[], authservId: string, domain: string): Check {
  const trusted = headerValues(headers, 'authentication-results')
    .map(parseAuthenticationResults)
    .find((r) => r?.authservId === authservId.toLowerCase());
  if (!trusted) return { ok: false, reason: `no Authentication-Results from ${authservId}` };
  const dmarc = trusted.results.find((r) => r.method === 'dmarc');
  if (dmarc?.result !== 'pass') return { ok: false, reason: `dmarc=${dmarc?.result ?? 'none'}` };
  const checked = dmarc.props.get('header.from');
  if (checked !== domain) {
    return { ok: false, reason: `dmarc checked ${checked ?? 'no domain'}, not the From domain` };
  }
  const dkimAligned = trusted.results.some(
    (r) =>
      r.method === 'dkim' && r.result === 'pass' && aligned(signingDomain(r.props) ?? '', domain),
  );
  if (!dkimAligned) return { ok: false, reason: 'dmarc passed without an aligned DKIM pass' };
  return { ok: true };
}

function signingDomain(props: Map<string, string>): string | undefined {
  const d = props.get('header.d');
  if (d) return d;
  const i = props.get('header.i');
  return i?.slice(i.lastIndexOf('@') + 1);
}

/** Relaxed alignment without a public-suffix list: the same domain or one inside the other. */
function aligned(a: string, b: string): boolean {
  return a !== '' && (a === b || a.endsWith(`.${b}`) || b.endsWith(`.${a}`));
}

interface MailauthResult {
  dkim?: { results?: Array<{ signingDomain?: string; status?: { result?: string } }> };
  dmarc?:
    | false
    | {
        status?: { result?: string };
        domain?: string;
        alignment?: { dkim?: { result?: string | false; strict?: boolean } };
      };
}

/**
 * errand's own DKIM and DMARC check. No client IP is passed, so SPF has nothing to say and
 * a DMARC pass can only come from an aligned DKIM signature. Alignment is checked here
 * again, against the signatures that passed: mailauth 4 reports a strict record
 * (`adkim=s`) but aligns relaxed anyway, so a signature of `example.com` would pass for a
 * From of `sub.example.com` (RFC 7489 §3.1.1 requires the exact domain).
 */
async function dmarcByVerifying(
  raw: Buffer,
  domain: string,
  resolver: DnsResolver | undefined,
): Promise<Check> {
  let r: MailauthResult;
  try {
    r = (await authenticate(raw, {
      trustReceived: false,
      disableArc: true,
      disableBimi: true,
      ...(resolver ? { resolver } : {}),
    })) as MailauthResult;
  } catch (e) {
    return { ok: false, reason: `DKIM verification failed: ${(e as Error).message}` };
  }
  const dkim = (r.dkim?.results ?? []).map((x) => x.status?.result ?? 'none');
  const dmarc = r.dmarc || undefined;
  const result = dmarc?.status?.result ?? 'none';
  if (result !== 'pass') {
    return {
      ok: false,
      temporary: result === 'temperror' || dkim.includes('temperror'),
      reason: `dmarc=${result} (dkim=${dkim.join(',') || 'none'})`,
    };
  }
  const signers = (r.dkim?.results ?? [])
    .filter((x) => x.status?.result === 'pass')
    .map((x) => (x.signingDomain ?? '').toLowerCase());
  if (dmarc?.alignment?.dkim?.strict) {
    if (!signers.includes(domain))
      return {
        ok: false,
        reason: `dmarc requires strict alignment (adkim=s) and no DKIM signature of ${domain} passed (signed by ${signers.join(', ') || 'nobody'})`,
      };
    return { ok: true };
  }
  if (!dmarc?.alignment?.dkim?.result || !signers.some((d) => aligned(d, domain))) {
    return { ok: false, reason: 'dmarc passed without an aligned DKIM signature' };
  }
  return { ok: true };
}
