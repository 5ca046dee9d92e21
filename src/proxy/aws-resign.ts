import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { hostMatches } from './allowlist.ts';
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
  | { kind: 'resigned'; name: string }
  | { kind: 'refused'; code: string; reason: string }
  /** The payload hash is not in a header: the caller must hash the body and call again. */
  | { kind: 'needs_body' };

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

function queryObject(
  search: URLSearchParams,
  drop: (k: string) => boolean,
): Record<string, string | string[]> {
  const q: Record<string, string | string[]> = {};
  for (const [k, v] of search) {
    if (drop(k)) continue;
    const prev = q[k];
    q[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return q;
}

/**
 * Re-signs an AWS SigV4 request made with a surrogate key, in place, with the real key, the
 * same region, service, time and signed headers. Header and presigned-query signatures are
 * handled; chunk-signed uploads are refused with a reason the agent can act on.
 * `body` is the buffered request body, when the caller had to read it (see `needs_body`).
 */
export async function resignAws(
  req: {
    method: string;
    host: string;
    target: string;
    headers: IncomingHttpHeaders;
    body?: Buffer;
  },
  active: ActiveAwsCredential[],
): Promise<AwsResign> {
  if (active.length === 0) return { kind: 'none' };
  const url = new URL(req.target, 'https://placeholder.invalid');
  const auth =
    typeof req.headers.authorization === 'string' ? AUTH.exec(req.headers.authorization) : null;
  const presignCredential = url.searchParams.get('X-Amz-Credential');
  const keyId = auth?.[1] ?? presignCredential?.split('/')[0];
  const cred = keyId ? active.find((a) => a.surrogate.accessKeyId === keyId) : undefined;
  if (!cred) return { kind: 'none' };
  // On a host outside its scope the surrogate signature goes out as is: useless there.
  if (!cred.hosts.some((h) => hostMatches(h.toLowerCase(), req.host))) return { kind: 'none' };

  if (auth) {
    const [, , , region, service, signedList] = auth as unknown as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const date = amzDate(String(req.headers['x-amz-date'] ?? ''));
    if (!date)
      return {
        kind: 'refused',
        code: 'aws_no_date',
        reason: 'a SigV4 request without X-Amz-Date cannot be re-signed',
      };
    const declared = req.headers['x-amz-content-sha256'];
    if (typeof declared === 'string' && declared.startsWith('STREAMING-')) {
      return {
        kind: 'refused',
        code: 'aws_chunked_unsupported',
        reason:
          'chunk-signed uploads (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) cannot be re-signed; configure the client for unsigned or whole-body payload signing',
      };
    }
    let payloadHash = typeof declared === 'string' ? declared : undefined;
    if (!payloadHash) {
      if (!req.body) return { kind: 'needs_body' };
      payloadHash = createHash('sha256').update(req.body).digest('hex');
    }
    const signed = signedList.split(';');
    const headers: Record<string, string> = {};
    for (const h of signed) {
      let v = req.headers[h];
      if (h === 'x-amz-security-token' && cred.sessionToken) v = cred.sessionToken;
      if (h === 'host') v = String(req.headers.host ?? req.host);
      if (v !== undefined) headers[h] = Array.isArray(v) ? v.join(',') : String(v);
    }
    headers['x-amz-content-sha256'] ??= payloadHash;
    const out = await signer(cred, region, service).sign(
      {
        method: req.method,
        protocol: 'https:',
        hostname: req.host,
        path: url.pathname,
        query: queryObject(url.searchParams, () => false),
        headers,
      },
      {
        signingDate: date,
        signableHeaders: new Set(signed),
        signingRegion: region,
        signingService: service,
      },
    );
    // Only what the signature covers changes; the payload hash header stays as the client sent it.
    req.headers.authorization = String(out.headers.authorization ?? out.headers.Authorization);
    if (req.headers['x-amz-security-token'] !== undefined && cred.sessionToken)
      req.headers['x-amz-security-token'] = cred.sessionToken;
    return { kind: 'resigned', name: cred.name };
  }

  // Presigned URL: rebuild the query with a signature from the real key.
  const [, , region, service] = (presignCredential ?? '').split('/') as [
    string,
    string,
    string,
    string,
  ];
  const date = amzDate(url.searchParams.get('X-Amz-Date') ?? '');
  const expires = Number(url.searchParams.get('X-Amz-Expires') ?? '');
  const signedList = (url.searchParams.get('X-Amz-SignedHeaders') ?? 'host').split(';');
  if (!date || !Number.isFinite(expires) || !region || !service) {
    return {
      kind: 'refused',
      code: 'aws_bad_presign',
      reason: 'the presigned URL lacks X-Amz-Date, X-Amz-Expires or a full X-Amz-Credential',
    };
  }
  const headers: Record<string, string> = {};
  for (const h of signedList) {
    const v = h === 'host' ? String(req.headers.host ?? req.host) : req.headers[h];
    if (v !== undefined) headers[h] = Array.isArray(v) ? v.join(',') : String(v);
  }
  const out = await signer(cred, region, service).presign(
    {
      method: req.method,
      protocol: 'https:',
      hostname: req.host,
      path: url.pathname,
      query: queryObject(url.searchParams, (k) => k.startsWith('X-Amz-')),
      headers,
    },
    {
      signingDate: date,
      expiresIn: expires,
      signableHeaders: new Set(signedList),
      signingRegion: region,
      signingService: service,
    },
  );
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(out.query ?? {}))
    for (const x of Array.isArray(v) ? v : [v]) q.append(k, String(x));
  req.target = `${url.pathname}?${q.toString().replace(/\+/g, '%20')}`;
  return { kind: 'resigned', name: cred.name };
}
