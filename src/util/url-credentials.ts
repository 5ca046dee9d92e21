/**
 * Credentials that ride in URLs: `https://user:token@host/…` (a git_url with a token, an
 * error from git or an HTTP client that quotes it) and `?access_token=…`-style query values
 * (a Slack socket URL's `ticket`, a presigned link's signature). Everything errand shows
 * (pages, the JSON API, CLI output, log lines) passes through redactUrl; the guarantees
 * are in docs/security.md and docs/dashboard.md.
 */

// The userinfo part of a URL ends at the last `@` before the path; a password with an
// unencoded `@` in it must not leave its tail behind. The match stops at what no authority
// holds (`/?#`, space) and at what quotes or escapes a string (`"`, `\`, `<`, `>`), so it
// works on JSON and HTML text without reaching into the next value.
const USERINFO = /([a-z][a-z0-9+.-]*:\/\/)[^\s/?#"\\<>]*@/gi;

// Query parameters whose values are credentials by name. `;` counts as a separator for
// text already escaped as HTML (`&amp;token=`).
const QUERY_CREDENTIAL =
  /([?&;](?:[a-z0-9_.-]*(?:token|secret|signature|password|passwd|credential|api[_-]?key)|key|sig|ticket|auth|pwd|jwt)=)[^&#\s"'\\<>]+/gi;

/**
 * Text with the credentials of every URL in it hidden: userinfo becomes `***@`
 * (`https://***@host/…`), a credential-like query value becomes `***`. Text without a URL
 * comes back unchanged.
 */
export function redactUrl(text: string): string {
  if (!text.includes('://') && !text.includes('=')) return text;
  return text.replace(USERINFO, '$1***@').replace(QUERY_CREDENTIAL, '$1***');
}

/**
 * The URL without its userinfo and with credential-like query values hidden: what a clone
 * the agent can read may keep as `origin`.
 */
export function stripCredentials(url: string): string {
  return url.replace(USERINFO, '$1').replace(QUERY_CREDENTIAL, '$1***');
}

const LEADING_USERINFO = /^[a-z][a-z0-9+.-]*:\/\/([^\s/?#"\\<>]*)@/i;

/**
 * The credentials a URL carries in its userinfo, in the forms a message may quote them
 * without the URL around them (git's "unable to look up user:token@host"): the whole
 * userinfo, and the user and password when long enough to be one, as written and decoded.
 * Empty when the URL has none.
 */
export function urlCredentials(url: string): string[] {
  const userinfo = LEADING_USERINFO.exec(url)?.[1];
  if (!userinfo) return [];
  const colon = userinfo.indexOf(':');
  const parts = colon < 0 ? [userinfo] : [userinfo.slice(0, colon), userinfo.slice(colon + 1)];
  const found = new Set<string>();
  for (const [value, always] of [
    [userinfo, colon >= 0],
    ...parts.map((p) => [p, false] as const),
  ] as const) {
    for (const v of [value, decoded(value)]) {
      // A short user name (`git`, `oauth2`'s cousins) is no secret, and hiding it would
      // hide every word it is part of.
      if (v && (always || v.length >= 6)) found.add(v);
    }
  }
  return [...found].sort((a, b) => b.length - a.length);
}

function decoded(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Text with every occurrence of these values (from urlCredentials) replaced by `***`. */
export function redactValues(text: string, values: readonly string[]): string {
  let out = text;
  for (const v of values) out = out.replaceAll(v, '***');
  return out;
}
