import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Transform } from 'node:stream';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { hostMatches } from './allowlist.ts';
import { AwsChunkResigner, sigV4SigningKey } from './aws-chunked.ts';
import { parseTarget, type QueryParam, queryObject, serializeQuery } from './aws-target.ts';
import { makeSurrogate } from './surrogates.ts';

export interface AwsCredential {
  /** Config name; the container gets `<NAME>_ACCESS_KEY_ID` and, for a single entry, `AWS_*`. */
  name: string;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  hosts: string[];
}

export interface ActiveAwsCredential extends AwsCredential {
  surrogate: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

/** New surrogate keys for one task (AKIA/ASIA prefixes kept). */
export function awsSurrogatesFor(creds: AwsCredential[]): ActiveAwsCredential[] {
  return creds.map((c) => ({
    ...c,
    surrogate: {
      accessKeyId: makeSurrogate(c.accessKeyId),
      secretAccessKey: makeSurrogate(c.secretAccessKey),
      sessionToken: c.sessionToken ? makeSurrogate(c.sessionToken) : undefined,
    },
  }));
}

/** The variables the container sees: surrogates only. */
export function awsEnv(active: ActiveAwsCredential[]): Record<string, string> {
  const env: Record<string, string> = {};
  const put = (prefix: string, a: ActiveAwsCredential) => {
    env[`${prefix}_ACCESS_KEY_ID`] = a.surrogate.accessKeyId;
    env[`${prefix}_SECRET_ACCESS_KEY`] = a.surrogate.secretAccessKey;
    if (a.surrogate.sessionToken) env[`${prefix}_SESSION_TOKEN`] = a.surrogate.sessionToken;
  };
  for (const a of active) put(a.name, a);
  if (active.length === 1) put('AWS', active[0]!);
  return env;
}

export type AwsResign =
  | { kind: 'none' }
  /** `body`, when set: the request body must go upstream through it (chunk signatures). */
  | { kind: 'resigned'; name: string; body?: Transform }
  | { kind: 'refused'; code: string; reason: string }
  /** The payload hash is not in a header: the caller must hash the body and call again. */
  | { kind: 'needs_body' };

/**
 * The longest a presigned URL re-signed with the real key stays valid, counted from the
 * moment errand re-signs it. The URL goes upstream at once; only a copy taken on the way
 * (an access log on a host within the credential's scope) outlives the request, and this
 * bounds how long such a copy works. Longer URLs are re-signed with a shorter
 * X-Amz-Expires rather than refused: the request in hand works the same.
 */
export const MAX_PRESIGNED_LIFETIME_SECONDS = 3600;
/** AWS's own tolerance for clock skew. The container's clock is the host's (one kernel). */
const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;
/** SigV4's own ceiling for X-Amz-Expires: seven days. */
const MAX_PRESIGN_EXPIRES = 7 * 24 * 3600;

const EMPTY_SHA256 = createHash('sha256').digest('hex');
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

/** Streaming payloads errand re-signs; every other `STREAMING-*` is refused. */
const STREAMING: Record<string, 'header' | 'chunks' | 'chunks+trailer'> = {
  // aws-chunked with unsigned chunks and a checksum trailer: only the header is signed.
  'STREAMING-UNSIGNED-PAYLOAD-TRAILER': 'header',
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD': 'chunks',
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER': 'chunks+trailer',
};

/** Query parameters a presigned URL's signing writes; all others are signed as sent. */
const PRESIGN_PARAMS = [
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-SignedHeaders',
  'X-Amz-Security-Token',
  'X-Amz-Signature',
];

const AUTH =
  /^AWS4-HMAC-SHA256\s+Credential=([^/\s]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request,\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]+)$/;

function amzDate(s: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  return m ? new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!)) : undefined;
}

function signer(c: ActiveAwsCredential, region: string, service: string): SignatureV4 {
  return new SignatureV4({
    credentials: {
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      sessionToken: c.sessionToken,
    },
    region,
    service,
    sha256: Hash.bind(null, 'sha256'),
    // S3 signs the path as sent; every other service escapes it once more.
    uriEscapePath: service !== 's3',
    applyChecksum: false,
  });
}

/** The values of the headers a signature covers, as the signer takes them. */
function signedHeaderValues(
  req: AwsRequest,
  names: string[],
  cred: ActiveAwsCredential,
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const h of names) {
    let v = req.headers[h];
    if (h === 'x-amz-security-token' && cred.sessionToken) v = cred.sessionToken;
    if (h === 'host') v = String(req.headers.host ?? req.host);
    if (v !== undefined) headers[h] = Array.isArray(v) ? v.join(',') : String(v);
  }
  return headers;
}

/** The request as it will go upstream; `resignAws` rewrites its target and headers. */
export interface AwsRequest {
  method: string;
  /** The checked destination host (the TLS server name). */
  host: string;
  target: string;
  headers: IncomingHttpHeaders;
  /** The buffered body, when the caller had to read it (see `needs_body`). */
  body?: Buffer;
  /**
   * Set when the request would go out unencrypted: one signed by a surrogate key scoped
   * to the host is refused with this code and reason instead of being re-signed.
   */
  cleartext?: { code: string; reason: (name: string) => string };
}

const refused = (code: string, reason: string): AwsResign => ({ kind: 'refused', code, reason });

/**
 * A signature whose canonical request leaves out the host would be valid for the same
 * request to any host (another bucket, another service's endpoint), not only the one the
 * allowlist checked. AWS itself requires host among the signed headers.
 */
const HOST_UNSIGNED = refused(
  'aws_host_unsigned',
  'a SigV4 signature that does not cover the host header cannot be re-signed: the real key would sign the request for every host; sign host, as every AWS SDK does',
);

function skewed(date: Date, now: number): AwsResign {
  return refused(
    'aws_date_skew',
    `X-Amz-Date ${date.toISOString()} is more than 15 minutes from errand's clock (${new Date(now).toISOString()}); sign with the current time`,
  );
}

/**
 * Re-signs an AWS SigV4 request made with a surrogate key, in place, with the real key, the
 * same region, service, time and signed headers. Header and presigned-query signatures are
 * handled, and aws-chunked uploads (unsigned chunks with a trailer, or signed chunks whose
 * signatures `body` rewrites). `req.target` is set to what goes upstream: the path byte for
 * byte as received, the query in SigV4's encoding, so what is signed is what is sent.
 * `body` is the buffered request body, when the caller had to read it (see `needs_body`).
 */
export async function resignAws(
  req: AwsRequest,
  active: ActiveAwsCredential[],
  now: number = Date.now(),
): Promise<AwsResign> {
  if (active.length === 0) return { kind: 'none' };
  const auth =
    typeof req.headers.authorization === 'string' ? AUTH.exec(req.headers.authorization) : null;
  const target = parseTarget(req.target);
  if (!target.ok) {
    // A target errand cannot split exactly is never signed. Which key a presigned URL names
    // is known only once it parses, so any mention of a surrogate key refuses it.
    const mentioned = auth
      ? active.some((a) => a.surrogate.accessKeyId === auth[1])
      : active.some((a) => req.target.includes(a.surrogate.accessKeyId));
    return mentioned ? refused(target.code, target.reason) : { kind: 'none' };
  }
  const keyId =
    auth?.[1] ?? target.query.find((p) => p.key === 'X-Amz-Credential')?.value.split('/')[0];
  const cred = keyId ? active.find((a) => a.surrogate.accessKeyId === keyId) : undefined;
  if (!cred) return { kind: 'none' };
  // On a host outside its scope the surrogate signature goes out as is: useless there.
  if (!cred.hosts.some((h) => hostMatches(h.toLowerCase(), req.host))) return { kind: 'none' };
  if (req.cleartext) return refused(req.cleartext.code, req.cleartext.reason(cred.name));
  // The Host header only matched the checked host once lower-cased and stripped of its port
  // and trailing dot: the real key signs, and the upstream gets, the host that was checked.
  req.headers.host = req.host;
  return auth
    ? resignHeader(req, target.path, target.query, auth, cred, now)
    : resignPresigned(req, target.path, target.query, cred, now);
}

async function resignHeader(
  req: AwsRequest,
  path: string,
  query: QueryParam[],
  auth: RegExpExecArray,
  cred: ActiveAwsCredential,
  now: number,
): Promise<AwsResign> {
  const [, , , region, service, signedList] = auth as unknown as string[];
  const longDate = String(req.headers['x-amz-date'] ?? '');
  const date = amzDate(longDate);
  if (!date)
    return refused('aws_no_date', 'a SigV4 request without X-Amz-Date cannot be re-signed');
  // A request dated ahead would be replayable later by whoever saw it on the way.
  if (Math.abs(date.getTime() - now) > MAX_CLOCK_SKEW_MS) return skewed(date, now);
  const declared = req.headers['x-amz-content-sha256'];
  const streaming =
    typeof declared === 'string' && declared.startsWith('STREAMING-')
      ? STREAMING[declared]
      : undefined;
  if (typeof declared === 'string' && declared.startsWith('STREAMING-') && !streaming)
    return refused(
      'aws_chunked_unsupported',
      `${declared} uploads cannot be re-signed (only HMAC-SHA256 chunk signatures can); use STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, UNSIGNED-PAYLOAD or a whole-body payload hash`,
    );
  if (typeof declared !== 'string' && !req.body) return { kind: 'needs_body' };
  const signed = signedList!.split(';');
  const headers = signedHeaderValues(req, signed, cred);
  if (headers.host === undefined) return HOST_UNSIGNED;
  // The payload hash is the header's, signed or not (AWS reads it), else the body's; a
  // header errand added to feed the signer would be signed but never sent.
  const unsignable = new Set<string>();
  if (typeof declared === 'string' && headers['x-amz-content-sha256'] === undefined) {
    headers['x-amz-content-sha256'] = declared;
    unsignable.add('x-amz-content-sha256');
  }
  const out = await signer(cred, region!, service!).sign(
    {
      method: req.method,
      protocol: 'https:',
      hostname: req.host,
      path,
      query: queryObject(query),
      headers,
      body: typeof declared === 'string' ? undefined : req.body,
    },
    {
      signingDate: date,
      signableHeaders: new Set(signed),
      unsignableHeaders: unsignable,
      signingRegion: region,
      signingService: service,
    },
  );
  // Only what the signature covers changes; the payload hash header stays as the client sent it.
  const authorization = String(out.headers.authorization ?? out.headers.Authorization);
  req.headers.authorization = authorization;
  // The signer signs the real session token whenever there is one.
  if (cred.sessionToken) req.headers['x-amz-security-token'] = cred.sessionToken;
  req.target = query.length ? `${path}?${serializeQuery(query)}` : path;
  if (streaming !== 'chunks' && streaming !== 'chunks+trailer')
    return { kind: 'resigned', name: cred.name };
  const decoded = req.headers['x-amz-decoded-content-length'];
  // The day of the signature's scope, as the signer took it from X-Amz-Date.
  const day = longDate.slice(0, 8);
  const body = new AwsChunkResigner({
    key: sigV4SigningKey(cred.secretAccessKey, day, region!, service!),
    longDate,
    scope: `${day}/${region}/${service}/aws4_request`,
    seed: /Signature=([0-9a-f]{64})$/.exec(authorization)![1]!,
    trailer: streaming === 'chunks+trailer',
    decodedLength:
      typeof decoded === 'string' && /^\d+$/.test(decoded) ? Number(decoded) : undefined,
  });
  return { kind: 'resigned', name: cred.name, body };
}

/** Presigned URL: the same query, with the real key's credential, token and signature. */
async function resignPresigned(
  req: AwsRequest,
  path: string,
  query: QueryParam[],
  cred: ActiveAwsCredential,
  now: number,
): Promise<AwsResign> {
  const one = (k: string) => query.filter((p) => p.key === k);
  if (PRESIGN_PARAMS.some((k) => one(k).length > 1))
    return refused(
      'aws_bad_presign',
      'the presigned URL repeats one of its X-Amz-* signing parameters',
    );
  const get = (k: string) => one(k)[0]?.value;
  const [, day, region, service, terminator] = (get('X-Amz-Credential') ?? '').split('/');
  const date = amzDate(get('X-Amz-Date') ?? '');
  const expiresText = get('X-Amz-Expires') ?? '';
  const expires = /^\d{1,7}$/.test(expiresText) ? Number(expiresText) : 0;
  if (
    get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256' ||
    !date ||
    expires < 1 ||
    expires > MAX_PRESIGN_EXPIRES ||
    !region ||
    !service ||
    terminator !== 'aws4_request' ||
    day !== get('X-Amz-Date')!.slice(0, 8)
  )
    return refused(
      'aws_bad_presign',
      'the presigned URL needs X-Amz-Algorithm=AWS4-HMAC-SHA256, X-Amz-Date, X-Amz-Expires (1 s to 7 days) and a full X-Amz-Credential for that day',
    );
  // A URL dated ahead would start its validity later, past any cap counted from now.
  if (date.getTime() - now > MAX_CLOCK_SKEW_MS) return skewed(date, now);
  // Negative for a URL dated ahead (within the skew): its lifetime still ends an hour from now.
  const elapsed = Math.floor((now - date.getTime()) / 1000);
  const expiresIn = Math.min(expires, elapsed + MAX_PRESIGNED_LIFETIME_SECONDS);

  const signedList = (get('X-Amz-SignedHeaders') ?? 'host').split(';');
  const headers = signedHeaderValues(req, signedList, cred);
  if (headers.host === undefined) return HOST_UNSIGNED;
  // S3 signs presigned URLs over UNSIGNED-PAYLOAD (the AWS SDK names it in
  // X-Amz-Content-Sha256, boto3 leaves it implied); other services over an empty body.
  const unsignable = new Set<string>();
  if (headers['x-amz-content-sha256'] === undefined) {
    headers['x-amz-content-sha256'] =
      query.find((p) => p.key.toLowerCase() === 'x-amz-content-sha256')?.value ??
      (service === 's3' ? UNSIGNED_PAYLOAD : EMPTY_SHA256);
    unsignable.add('x-amz-content-sha256');
  }
  const kept = query.filter((p) => !PRESIGN_PARAMS.includes(p.key));
  const out = await signer(cred, region, service).presign(
    {
      method: req.method,
      protocol: 'https:',
      hostname: req.host,
      path,
      query: queryObject(kept),
      headers,
    },
    {
      signingDate: date,
      expiresIn,
      signableHeaders: new Set(signedList),
      unsignableHeaders: unsignable,
      // Signed headers stay headers, as the client sent them.
      unhoistableHeaders: new Set(Object.keys(headers)),
      signingRegion: region,
      signingService: service,
    },
  );
  const written = out.query ?? {};
  const value = (k: string) => {
    const v = written[k];
    return v === undefined || v === null ? undefined : String(v);
  };
  // The client's order, with the signing parameters' values replaced; a token the client
  // did not send but the real credential has is added.
  const sent: QueryParam[] = [];
  for (const p of query) {
    if (!PRESIGN_PARAMS.includes(p.key)) sent.push(p);
    else if (value(p.key) !== undefined)
      sent.push({ key: p.key, value: value(p.key)!, bare: false });
  }
  for (const k of PRESIGN_PARAMS)
    if (value(k) !== undefined && !sent.some((p) => p.key === k))
      sent.push({ key: k, value: value(k)!, bare: false });
  req.target = `${path}?${serializeQuery(sent)}`;
  return { kind: 'resigned', name: cred.name };
}
