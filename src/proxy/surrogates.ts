import { randomInt } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { globMatches, hostMatches } from './allowlist.ts';

/** Prefixes tools check for; a surrogate keeps them so the tool accepts it. Longest first. */
const KNOWN_PREFIXES = [
  'sk-ant-api03-',
  'sk-ant-oat01-',
  'github_pat_',
  'sk-proj-',
  'sk-ant-',
  'glpat-',
  'xoxb-',
  'xoxp-',
  'xapp-',
  'ghp_',
  'gho_',
  'ghu_',
  'ghs_',
  'ghr_',
  'npm_',
  'AKIA',
  'ASIA',
  'sk-',
];

const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const DIGIT = '0123456789';

function pick(set: string): string {
  return set[randomInt(set.length)]!;
}

/**
 * A stand-in for a real credential: same length, same known prefix, and each other
 * character replaced by a random one of its class (lower, upper, digit; others kept), so
 * format checks in tools pass while the value is useless anywhere else.
 */
export function makeSurrogate(real: string): string {
  const prefix = KNOWN_PREFIXES.find((p) => real.startsWith(p)) ?? '';
  for (;;) {
    let out = prefix;
    for (const ch of real.slice(prefix.length)) {
      out += LOWER.includes(ch)
        ? pick(LOWER)
        : UPPER.includes(ch)
          ? pick(UPPER)
          : DIGIT.includes(ch)
            ? pick(DIGIT)
            : ch;
    }
    // A value with no letters or digits after its prefix cannot be masked.
    if (out !== real || real.length - prefix.length === 0) return out;
  }
}

export interface MaskedSecret {
  /** Environment variable the container sees. */
  name: string;
  real: string;
  hosts: string[];
  /** Header name globs, case-insensitive. */
  headers: string[];
}

export interface ActiveSurrogate extends MaskedSecret {
  surrogate: string;
}

/** New surrogates for one task: a value never repeats across tasks. */
export function surrogatesFor(secrets: MaskedSecret[]): ActiveSurrogate[] {
  return secrets.map((s) => ({ ...s, surrogate: makeSurrogate(s.real) }));
}

function headerMatches(globs: string[], name: string): boolean {
  const n = name.toLowerCase();
  return globs.some((g) => globMatches(g.toLowerCase(), n));
}

function swapValue(value: string, s: ActiveSurrogate): string | undefined {
  if (/^basic\s+/i.test(value)) {
    const [scheme, encoded = ''] = value.split(/\s+/, 2) as [string, string?];
    const decoded = Buffer.from(encoded, 'base64').toString('utf8');
    if (decoded.includes(s.surrogate))
      return `${scheme} ${Buffer.from(decoded.replaceAll(s.surrogate, s.real), 'utf8').toString('base64')}`;
    return undefined;
  }
  return value.includes(s.surrogate) ? value.replaceAll(s.surrogate, s.real) : undefined;
}

/**
 * Puts real credentials into a request to `host`, in place. Only the configured headers
 * of the surrogates scoped to this host are touched; such a header that does not carry
 * the surrogate is dropped, so the sandbox cannot send a credential of its own choosing
 * where a real one is expected. Returns the names of the secrets swapped in.
 */
export function swapSurrogates(
  host: string,
  headers: IncomingHttpHeaders,
  active: ActiveSurrogate[],
): string[] {
  const scoped = active.filter((s) => s.hosts.some((h) => hostMatches(h.toLowerCase(), host)));
  const swapped = new Set<string>();
  for (const name of Object.keys(headers)) {
    const applicable = scoped.filter((s) => headerMatches(s.headers, name));
    if (applicable.length === 0) continue;
    const raw = headers[name];
    const values = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
    const out: string[] = [];
    for (const v of values) {
      let value: string | undefined;
      for (const s of applicable) {
        const r = swapValue(value ?? v, s);
        if (r !== undefined) {
          value = r;
          swapped.add(s.name);
        }
      }
      if (value !== undefined) out.push(value);
    }
    if (out.length === 0) delete headers[name];
    else headers[name] = Array.isArray(raw) ? out : out[0];
  }
  return [...swapped];
}
