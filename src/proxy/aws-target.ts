/** One query parameter, decoded. `bare`: sent as `key` without `=` (S3's `?uploads`, `?acl`). */
export interface QueryParam {
  key: string;
  value: string;
  bare: boolean;
}

export type ParsedTarget =
  | { ok: true; path: string; query: QueryParam[] }
  | { ok: false; code: 'bad_target' | 'aws_bad_query'; reason: string };

/**
 * Splits an origin-form request target into its raw path and its decoded query, without
 * URL's relative resolution: `new URL('//host/key', base)` reads `host` as an authority and
 * `/./` or `%2e%2e` as dot segments, so the path it yields is not the path that was checked
 * and is sent. The path stays byte for byte as received.
 */
export function parseTarget(target: string): ParsedTarget {
  if (!target.startsWith('/') || target.startsWith('//'))
    return {
      ok: false,
      code: 'bad_target',
      reason: 'the request target must be a path with a single leading slash',
    };
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  const query: QueryParam[] = [];
  if (q >= 0) {
    for (const pair of target.slice(q + 1).split('&')) {
      if (pair === '') continue;
      const eq = pair.indexOf('=');
      const rawKey = eq < 0 ? pair : pair.slice(0, eq);
      const rawValue = eq < 0 ? '' : pair.slice(eq + 1);
      const key = decodeQueryPart(rawKey);
      const value = decodeQueryPart(rawValue);
      if (key === undefined || value === undefined)
        return {
          ok: false,
          code: 'aws_bad_query',
          reason: `the query parameter ${JSON.stringify(rawKey)} has an invalid percent-encoding; encode it as RFC 3986 says`,
        };
      query.push({ key, value, bare: eq < 0 });
    }
  }
  return { ok: true, path, query };
}

/**
 * A `+` in a query is a space, as in HTML forms and as S3 reads it; SigV4 canonicalizes a
 * space as `%20`. Re-serializing with `awsUriEncode` makes the bytes sent upstream the
 * bytes signed, so no server can read a `+` differently from errand.
 */
function decodeQueryPart(s: string): string | undefined {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/** SigV4's URI encoding: every byte but the unreserved `A-Za-z0-9-._~` as `%XX`. */
export function awsUriEncode(s: string): string {
  return encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** The query as sent: the client's order, each part in SigV4's canonical encoding. */
export function serializeQuery(query: QueryParam[]): string {
  return query
    .map((p) => (p.bare ? awsUriEncode(p.key) : `${awsUriEncode(p.key)}=${awsUriEncode(p.value)}`))
    .join('&');
}

/** The query in the shape the SDK's signer takes: repeated keys as arrays. */
export function queryObject(query: QueryParam[]): Record<string, string | string[]> {
  // No prototype: a parameter named `__proto__` is a parameter like any other.
  const q: Record<string, string | string[]> = Object.create(null);
  for (const { key, value } of query) {
    const prev = q[key];
    q[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return q;
}
