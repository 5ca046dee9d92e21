import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

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
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (e) {
    return { ok: false, problem: `not valid YAML: ${(e as Error).message.split('\n')[0]}` };
  }
  const r = allowlistSchema.safeParse(raw);
  if (r.success) return { ok: true, allowlist: r.data };
  const i = r.error.issues[0]!;
  const key = i.code === 'unrecognized_keys' ? [...i.path, i.keys[0]].join('.') : i.path.join('.');
  return {
    ok: false,
    problem: `${key || '(top level)'}: ${i.code === 'unrecognized_keys' ? 'unknown key' : i.message}`,
  };
}

export interface RequestFacts {
  host: string;
  method: string;
  /** The raw request target path (before decoding), without the query. */
  rawPath: string;
}

export type Decision =
  | { action: 'allow'; path: string }
  | {
      action: 'deny';
      code: 'host_not_allowed' | 'path_not_allowed' | 'method_not_allowed' | 'bad_path';
      reason: string;
    };

/**
 * Decodes and normalizes a request path for matching. Refuses what could make the matched
 * path differ from what the upstream serves: `..` segments, NUL, backslashes, and
 * encodings that do not decode.
 */
export function normalizePath(
  rawPath: string,
): { ok: true; path: string } | { ok: false; reason: string } {
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
  if (segments.some((s) => s === '..' || s === '.'))
    return { ok: false, reason: 'the path contains . or .. segments' };
  // Repeated slashes are one for matching, as most servers treat them.
  return { ok: true, path: decoded.replace(/\/{2,}/g, '/') };
}

export function hostMatches(pattern: string, host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (pattern.startsWith('*.')) {
    const suffix = pattern.slice(1);
    return h.endsWith(suffix) && h.length > suffix.length;
  }
  return h === pattern;
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
 * request always give the same answer. The most specific refusal is reported: host, then
 * path, then method.
 */
export function decide(allowlist: Allowlist, req: RequestFacts): Decision {
  const norm = normalizePath(req.rawPath);
  const what = `${req.method} https://${req.host}${req.rawPath}`;
  if (!norm.ok) return { action: 'deny', code: 'bad_path', reason: `${what}: ${norm.reason}` };
  const hostRules = allowlist.allow.filter((r) => hostMatches(r.host, req.host));
  if (hostRules.length === 0) {
    return {
      action: 'deny',
      code: 'host_not_allowed',
      reason: `${req.host} is not in ${ALLOWLIST_FILE}`,
    };
  }
  const pathRules = hostRules.filter(
    (r) => !r.paths || r.paths.some((g) => globMatches(g, norm.path)),
  );
  if (pathRules.length === 0) {
    return {
      action: 'deny',
      code: 'path_not_allowed',
      reason: `${norm.path} on ${req.host} is not in ${ALLOWLIST_FILE}`,
    };
  }
  const method = req.method.toUpperCase();
  if (!pathRules.some((r) => !r.methods || r.methods.includes(method))) {
    return {
      action: 'deny',
      code: 'method_not_allowed',
      reason: `${method} ${norm.path} on ${req.host} is not in ${ALLOWLIST_FILE}`,
    };
  }
  return { action: 'allow', path: norm.path };
}
