import { createHash, createHmac } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { Seen } from './upstream.ts';

export interface AwsKey {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** `payload`: the object's bytes as S3 would store them (aws-chunked framing removed). */
export type Verdict = { ok: true; payload: Buffer } | { ok: false; why: string };

const EMPTY_SHA256 = createHash('sha256').digest('hex');
const sha256 = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');
const hmac = (key: Buffer | string, s: string) => createHmac('sha256', key).update(s).digest();
const uriEncode = (s: string) =>
  encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );

function signingKey(key: AwsKey, day: string, region: string, service: string): Buffer {
  let k: Buffer = Buffer.from(`AWS4${key.secretAccessKey}`);
  for (const part of [day, region, service, 'aws4_request']) k = hmac(k, part);
  return k;
}

/** The query as AWS reads it: `+` is a space, every part percent-decoded. */
function queryPairs(url: string): [string, string][] {
  const q = url.indexOf('?');
  if (q < 0) return [];
  const dec = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
  return url
    .slice(q + 1)
    .split('&')
    .filter(Boolean)
    .map((kv) => {
      const eq = kv.indexOf('=');
      return eq < 0 ? [dec(kv), ''] : [dec(kv.slice(0, eq)), dec(kv.slice(eq + 1))];
    });
}

function canonicalQuery(pairs: [string, string][]): string {
  return pairs
    .map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`)
    .sort((a, b) => {
      const [ka, va] = a.split('=') as [string, string];
      const [kb, vb] = b.split('=') as [string, string];
      return ka < kb ? -1 : ka > kb ? 1 : va < vb ? -1 : va > vb ? 1 : 0;
    })
    .join('&');
}

/** S3 signs the path as sent; other services normalize it and encode it once more. */
function canonicalPath(rawPath: string, service: string): string {
  if (service === 's3') return rawPath;
  const segments = rawPath.split('/').filter((s) => s !== '' && s !== '.');
  return `/${segments.map(uriEncode).join('/')}${rawPath.endsWith('/') && segments.length ? '/' : ''}`;
}

function canonicalHeaders(seen: Seen, names: string[]): string {
  return names
    .map((h) => {
      const v = seen.headers[h];
      const value = (Array.isArray(v) ? v.join(',') : String(v ?? '')).trim().replace(/\s+/g, ' ');
      return `${h}:${value}\n`;
    })
    .join('');
}

function signature(
  key: AwsKey,
  o: {
    seen: Seen;
    day: string;
    longDate: string;
    region: string;
    service: string;
    signed: string[];
    query: [string, string][];
    payloadHash: string;
  },
): { sig: string; kSigning: Buffer; scope: string } {
  const rawPath = o.seen.url.split('?')[0]!;
  const canonical = [
    o.seen.method,
    canonicalPath(rawPath, o.service),
    canonicalQuery(o.query),
    canonicalHeaders(o.seen, o.signed),
    o.signed.join(';'),
    o.payloadHash,
  ].join('\n');
  const scope = `${o.day}/${o.region}/${o.service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', o.longDate, scope, sha256(canonical)].join('\n');
  const kSigning = signingKey(key, o.day, o.region, o.service);
  return { sig: hmac(kSigning, toSign).toString('hex'), kSigning, scope };
}

const AUTH =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/;

/**
 * What S3 would decide about a header-signed request that reached an upstream: the
 * signature over method, path, query and signed headers with `key`, the payload against its
 * declared hash, and for aws-chunked bodies every chunk signature, the trailer signature
 * and the CRC32 checksum trailer. A reference written from the SigV4 documents, apart from
 * errand's re-signer and from the SDK, so tests can check one against the others.
 */
export function verifyHeaderSigned(seen: Seen, key: AwsKey): Verdict {
  const m = AUTH.exec(String(seen.headers.authorization ?? ''));
  if (!m) return { ok: false, why: 'no SigV4 Authorization header' };
  const [, keyId, day, region, service, signedList, sent] = m as unknown as string[];
  if (keyId !== key.accessKeyId) return { ok: false, why: `signed with ${keyId}` };
  const signed = signedList!.split(';');
  const longDate = String(seen.headers['x-amz-date'] ?? '');
  if (longDate.slice(0, 8) !== day) return { ok: false, why: 'x-amz-date is not the scope day' };
  if (key.sessionToken && seen.headers['x-amz-security-token'] !== key.sessionToken)
    return { ok: false, why: 'not the session token of the key' };
  const declared = seen.headers['x-amz-content-sha256'];
  const payloadHash = typeof declared === 'string' ? declared : sha256(seen.bytes);
  const { sig, kSigning, scope } = signature(key, {
    seen,
    day: day!,
    longDate,
    region: region!,
    service: service!,
    signed,
    query: queryPairs(seen.url),
    payloadHash,
  });
  if (sig !== sent) return { ok: false, why: 'the request signature does not match' };
  if (payloadHash === 'UNSIGNED-PAYLOAD') return { ok: true, payload: seen.bytes };
  if (/^[0-9a-f]{64}$/.test(payloadHash))
    return sha256(seen.bytes) === payloadHash
      ? { ok: true, payload: seen.bytes }
      : { ok: false, why: 'the body does not match x-amz-content-sha256' };
  const signedChunks = payloadHash.startsWith('STREAMING-AWS4-HMAC-SHA256-PAYLOAD');
  if (!signedChunks && payloadHash !== 'STREAMING-UNSIGNED-PAYLOAD-TRAILER')
    return { ok: false, why: `unknown payload ${payloadHash}` };
  return verifyChunked(seen, {
    signedChunks,
    signedTrailer: payloadHash.endsWith('-TRAILER') && signedChunks,
    trailer: payloadHash.endsWith('-TRAILER'),
    kSigning,
    longDate,
    scope,
    seed: sent!,
  });
}

function verifyChunked(
  seen: Seen,
  o: {
    signedChunks: boolean;
    signedTrailer: boolean;
    trailer: boolean;
    kSigning: Buffer;
    longDate: string;
    scope: string;
    seed: string;
  },
): Verdict {
  const body = seen.bytes;
  const data: Buffer[] = [];
  let prev = o.seed;
  let at = 0;
  const line = (): string | undefined => {
    const nl = body.indexOf('\r\n', at);
    if (nl < 0) return undefined;
    const s = body.toString('latin1', at, nl);
    at = nl + 2;
    return s;
  };
  const chunkSig = (hash: string) =>
    hmac(
      o.kSigning,
      ['AWS4-HMAC-SHA256-PAYLOAD', o.longDate, o.scope, prev, EMPTY_SHA256, hash].join('\n'),
    ).toString('hex');
  for (;;) {
    const header = line();
    const m = header && /^([0-9a-f]+)(?:;chunk-signature=([0-9a-f]{64}))?$/i.exec(header);
    if (!m) return { ok: false, why: `bad chunk header ${JSON.stringify(header)}` };
    if (o.signedChunks !== (m[2] !== undefined)) return { ok: false, why: 'chunk signature' };
    const size = Number.parseInt(m[1]!, 16);
    const chunk = body.subarray(at, at + size);
    if (chunk.length !== size) return { ok: false, why: 'a chunk is cut short' };
    if (o.signedChunks) {
      const expected = chunkSig(sha256(chunk));
      if (expected !== m[2]) return { ok: false, why: `chunk ${data.length} signature` };
      prev = expected;
    }
    at += size;
    data.push(chunk);
    if (size === 0) break;
    if (body.toString('latin1', at, at + 2) !== '\r\n') return { ok: false, why: 'no CRLF' };
    at += 2;
  }
  const payload = Buffer.concat(data);
  const decoded = seen.headers['x-amz-decoded-content-length'];
  if (decoded !== undefined && Number(decoded) !== payload.length)
    return { ok: false, why: 'x-amz-decoded-content-length' };
  if (!o.trailer) {
    return body.toString('latin1', at) === '\r\n'
      ? { ok: true, payload }
      : { ok: false, why: 'the body does not end after its final chunk' };
  }
  const trailers: string[] = [];
  let trailerSig: string | undefined;
  for (;;) {
    const l = line();
    if (l === undefined) break;
    if (l === '') break;
    if (l.startsWith('x-amz-trailer-signature:')) trailerSig = l.slice(24);
    else trailers.push(l);
  }
  if (at !== body.length) return { ok: false, why: 'bytes after the trailer' };
  const crc = trailers.find((t) => t.startsWith('x-amz-checksum-crc32:'))?.slice(21);
  const want = Buffer.alloc(4);
  want.writeUInt32BE(crc32(payload));
  if (crc !== want.toString('base64')) return { ok: false, why: 'the CRC32 trailer' };
  if (o.signedTrailer) {
    const canonical = trailers.map((t) => `${t}\n`).join('');
    const expected = hmac(
      o.kSigning,
      ['AWS4-HMAC-SHA256-TRAILER', o.longDate, o.scope, prev, sha256(canonical)].join('\n'),
    ).toString('hex');
    if (expected !== trailerSig) return { ok: false, why: 'the trailer signature' };
  }
  return { ok: true, payload };
}

/**
 * What S3 would decide about a presigned URL that reached an upstream, with `key`: the
 * signature over the query as received (X-Amz-Signature aside), and its validity window.
 */
export function verifyPresigned(
  seen: Seen,
  key: AwsKey,
  now = Date.now(),
): { ok: true; expiresIn: number } | { ok: false; why: string } {
  const pairs = queryPairs(seen.url);
  const get = (k: string) => pairs.find(([n]) => n === k)?.[1];
  const [keyId, day, region, service] = (get('X-Amz-Credential') ?? '').split('/');
  if (keyId !== key.accessKeyId) return { ok: false, why: `signed with ${keyId}` };
  if (key.sessionToken && get('X-Amz-Security-Token') !== key.sessionToken)
    return { ok: false, why: 'not the session token of the key' };
  const longDate = get('X-Amz-Date') ?? '';
  const signed = (get('X-Amz-SignedHeaders') ?? '').split(';');
  const payloadHash =
    pairs.find(([k]) => k.toLowerCase() === 'x-amz-content-sha256')?.[1] ??
    (service === 's3' ? 'UNSIGNED-PAYLOAD' : EMPTY_SHA256);
  const { sig } = signature(key, {
    seen,
    day: day!,
    longDate,
    region: region!,
    service: service!,
    signed,
    query: pairs.filter(([k]) => k !== 'X-Amz-Signature'),
    payloadHash,
  });
  if (sig !== get('X-Amz-Signature')) return { ok: false, why: 'the signature does not match' };
  const d = longDate.replace(
    /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/,
    '$1-$2-$3T$4:$5:$6Z',
  );
  const expiresIn = Number(get('X-Amz-Expires'));
  if (Date.parse(d) + expiresIn * 1000 < now) return { ok: false, why: 'expired' };
  return { ok: true, expiresIn };
}
