import { parseDocument } from 'yaml';
import { z } from 'zod';
import { yamlShapeProblem, yamlValue } from '../util/yaml-limits.ts';
import { REFUSED_METHODS, type UpgradeFacts, upgradeRefusal } from './protocol-rules.ts';

/** Where the allowlist lives; named in every refusal so the agent knows what to change. */
export const ALLOWLIST_FILE = '.errand/network-allowlist.yaml';

const HOST_PATTERN = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
const METHOD = /^[A-Z]+$/;

const rule = z
  .object({
    host: z
      .string()
      .transform((h) => h.toLowerCase())
      .refine(
        (h) => HOST_PATTERN.test(h),
        'an exact host like api.github.com, or *.example.com for its subdomains',
      )
      .describe('exact host name, or *.suffix for every subdomain (not the apex)'),
    paths: z
      .array(z.string().startsWith('/', 'a path glob starting with /'))
      .min(1)
      .optional()
      .describe('globs on the decoded, normalized path; * matches anything; default: every path'),
    methods: z
      .array(
        z
          .string()
          .transform((m) => m.toUpperCase())
          .refine((m) => METHOD.test(m), 'an HTTP method like GET'),
      )
      .min(1)
      .optional()
      .describe('HTTP methods; default: every method'),
  })
  .strict();

export const allowlistSchema = z
  .object({ allow: z.array(rule).default([]).describe('requests that may leave the sandbox') })
  .strict();

export type Allowlist = z.infer<typeof allowlistSchema>;
export type AllowRule = Allowlist['allow'][number];

export type AllowlistParse = { ok: true; allowlist: Allowlist } | { ok: false; problem: string };

/** Parses the allowlist file; a problem names the key and rule, never guesses. */
export function parseAllowlist(text: string): AllowlistParse {
  const shape = yamlShapeProblem(text);
  if (shape) return { ok: false, problem: shape };
  const doc = parseDocument(text);
  if (doc.errors.length > 0)
    return { ok: false, problem: `not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}` };
  const raw = yamlValue(doc);
  if (!raw.ok) return raw;
  const r = allowlistSchema.safeParse(raw.value ?? {});
  if (r.success) return { ok: true, allowlist: r.data };
  const i = r.error.issues[0]!;
  const key = i.code === 'unrecognized_keys' ? [...i.path, i.keys[0]].join('.') : i.path.join('.');
  return {
    ok: false,
    problem: `${key || '(top level)'}: ${i.code === 'unrecognized_keys' ? 'unknown key' : i.message}`,
  };
}

export interface RequestFacts {
  /** The canonical host name (`canonicalHost`): the one the request goes to. */
  host: string;
  method: string;
  /** The raw request target path (before decoding), without the query. */
  rawPath: string;
  /** Methods the request's override headers ask for (`methodOverrides`); absent: none. */
  methodOverrides?: string[];
  /** Present when the request asks to switch protocols (`Connection: upgrade`). */
  upgrade?: UpgradeFacts;
}

export type DenyCode =
  | 'host_not_allowed'
  | 'path_not_allowed'
  | 'method_not_allowed'
  | 'bad_path'
  | 'method_refused'
  | 'upgrade_refused';

export type Decision =
  | { action: 'allow'; path: string }
  | { action: 'deny'; code: DenyCode; reason: string };

/** The refusals a change to the allowlist can lift; the others no allowlist can. */
export const ALLOWLIST_CODES: ReadonlySet<DenyCode> = new Set([
  'host_not_allowed',
  'path_not_allowed',
  'method_not_allowed',
]);

/**
 * Decodes and normalizes a request path for matching. Refuses what could make the matched
 * path differ from what the upstream serves: `..` and `.` segments (also before a `;`
 * parameter, `/..;/`, which Tomcat and Spring read as `..`), NUL, backslashes, and
 * encodings that do not decode. `path` is the decoded path; `withoutParams` is it with
 * each segment's `;parameters` removed, the path Java servers route on.
 */
export function normalizePath(
  rawPath: string,
): { ok: true; path: string; withoutParams: string } | { ok: false; reason: string } {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    return { ok: false, reason: 'the path has an invalid percent-encoding' };
  }
  if (!decoded.startsWith('/')) return { ok: false, reason: 'the path must start with /' };
  if (decoded.includes('\0')) return { ok: false, reason: 'the path contains NUL' };
  if (decoded.includes('\\')) return { ok: false, reason: 'the path contains a backslash' };
  const segments = decoded.split('/');
  const names = segments.map((s) => s.split(';', 1)[0]!);
  if (names.some((s) => s === '..' || s === '.'))
    return { ok: false, reason: 'the path contains . or .. segments (before any ;parameter)' };
  // Repeated slashes are one for matching, as most servers treat them.
  const collapse = (p: string) => p.replace(/\/{2,}/g, '/');
  return { ok: true, path: collapse(decoded), withoutParams: collapse(names.join('/')) };
}

/** Whether a canonical host name (`canonicalHost`) falls under a rule's host pattern. */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern.startsWith('*.')) {
    const suffix = pattern.slice(1);
    return host.endsWith(suffix) && host.length > suffix.length;
  }
  return host === pattern;
}

/** Whether any rule names the host; the proxy signs certificates for few names that none does. */
export function hostAdmitted(allowlist: Allowlist, host: string): boolean {
  return allowlist.allow.some((r) => hostMatches(r.host, host));
}

const globCache = new Map<string, RegExp>();
export function globMatches(glob: string, path: string): boolean {
  let re = globCache.get(glob);
  if (!re) {
    re = new RegExp(
      `^${glob
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
      's',
    );
    globCache.set(glob, re);
  }
  return re.test(path);
}

/**
 * The one decision for every request leaving a sandbox. Pure: the same allowlist and
 * request always give the same answer. Refusals no allowlist can lift come first (TRACE,
 * a bad path, an upgrade to anything but WebSocket); then the most specific one: host,
 * then path, then method.
 *
 * A path must be allowed however the upstream reads it: as decoded (most servers) and with
 * `;parameters` removed from each segment (Tomcat, Spring, Jetty). So `/files/key;.txt`
 * does not pass as `*.txt` when the server serves `/files/key`, and `/admin;x` does not
 * pass a `/*;*` glob when the server serves `/admin`; a harmless `;jsessionid=…` on an
 * allowed path stays allowed. Override headers' methods must each be allowed, like the
 * method itself.
 */
export function decide(allowlist: Allowlist, req: RequestFacts): Decision {
  const what = `${req.method} https://${req.host}${req.rawPath}`;
  const method = req.method.toUpperCase();
  const overrides = req.methodOverrides ?? [];
  const refused = [method, ...overrides].find((m) => REFUSED_METHODS.has(m));
  if (refused)
    return {
      action: 'deny',
      code: 'method_refused',
      reason: `${what}: ${refused} is never forwarded, whatever ${ALLOWLIST_FILE} says: its response echoes the request, credentials included`,
    };
  const norm = normalizePath(req.rawPath);
  if (!norm.ok) return { action: 'deny', code: 'bad_path', reason: `${what}: ${norm.reason}` };
  const upgrade = req.upgrade && upgradeRefusal(req.method, req.upgrade);
  if (upgrade) return { action: 'deny', code: 'upgrade_refused', reason: `${what}: ${upgrade}` };
  const hostRules = allowlist.allow.filter((r) => hostMatches(r.host, req.host));
  if (hostRules.length === 0) {
    return {
      action: 'deny',
      code: 'host_not_allowed',
      reason: `${req.host} is not in ${ALLOWLIST_FILE}`,
    };
  }
  for (const path of new Set([norm.path, norm.withoutParams])) {
    const pathRules = hostRules.filter(
      (r) => !r.paths || r.paths.some((g) => globMatches(g, path)),
    );
    if (pathRules.length === 0) {
      return {
        action: 'deny',
        code: 'path_not_allowed',
        reason: `${path} on ${req.host} is not in ${ALLOWLIST_FILE}`,
      };
    }
    for (const m of [method, ...overrides]) {
      if (!pathRules.some((r) => !r.methods || r.methods.includes(m))) {
        const asked =
          m === method ? method : `${method} overridden to ${m} (by a method-override header)`;
        return {
          action: 'deny',
          code: 'method_not_allowed',
          reason: `${asked} ${path} on ${req.host} is not in ${ALLOWLIST_FILE}`,
        };
      }
    }
  }
  return { action: 'allow', path: norm.path };
}
