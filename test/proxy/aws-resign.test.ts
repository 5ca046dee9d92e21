import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import {
  awsEnv,
  awsSurrogatesFor,
  CertificateAuthority,
  ProxyServer,
  type ProxySession,
  parseAllowlist,
} from '../../src/proxy/index.ts';
import { type Seen, startUpstream, viaProxy } from '../harness/upstream.ts';

const REAL = {
  accessKeyId: 'AKIAREALKEY000000001',
  secretAccessKey: 'realSecret/Key+0123456789abcdefghijABCDEFG',
  sessionToken: 'IQoJb3JpZ2luX2VjEREALSESSIONTOKEN0123456789',
};
const S3 = 'bucket.s3.us-east-1.amazonaws.com';
const SQS = 'sqs.eu-west-1.amazonaws.com';
const OTHER = 'other.test.example';

let dir: string;
let ca: CertificateAuthority;
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let session: ProxySession;
const active = awsSurrogatesFor([{ name: 'AWS_PROD', ...REAL, hosts: ['*.amazonaws.com'] }]);
const sur = active[0]!.surrogate;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'errand-aws-'));
  ca = await CertificateAuthority.loadOrCreate(join(dir, 'ca'));
  upstream = await startUpstream(join(dir, 'up'), [S3, SQS, OTHER]);
  const allow = parseAllowlist(`allow:\n  - host: "*.amazonaws.com"\n  - host: ${OTHER}\n`);
  assert.ok(allow.ok);
  const map = Object.fromEntries(
    [S3, SQS, OTHER].map((h) => [h, `127.0.0.1:${upstream.httpsPort}`]),
  );
  session = new ProxyServer({ ca }).openSession({
    taskId: 't_aws',
    allowlist: allow.allowlist,
    surrogates: [],
    aws: active,
    resolve: map,
    upstreamCa: upstream.caPem,
    log: () => undefined,
  });
});
after(async () => {
  await session.close();
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

function sdkSigner(creds: typeof REAL | typeof sur, region: string, service: string) {
  return new SignatureV4({
    credentials: creds as { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
    region,
    service,
    sha256: Hash.bind(null, 'sha256'),
    uriEscapePath: service !== 's3',
  });
}

/** Signs like the AWS SDK with the surrogate key, sends through the proxy, returns what the upstream saw. */
async function send(o: {
  host: string;
  service: string;
  region: string;
  method: string;
  path: string;
  query?: Record<string, string>;
  body?: string;
  headers?: Record<string, string>;
  presign?: boolean;
}): Promise<{ status: number; seen: Seen; body: string }> {
  const req = {
    method: o.method,
    protocol: 'https:',
    hostname: o.host,
    path: o.path,
    query: o.query ?? {},
    headers: { host: o.host, ...o.headers },
    body: o.body,
  };
  const s = sdkSigner(sur, o.region, o.service);
  const signed = o.presign ? await s.presign(req, { expiresIn: 300 }) : await s.sign(req);
  const qs = new URLSearchParams(signed.query as Record<string, string>)
    .toString()
    .replace(/\+/g, '%20');
  const before = upstream.seen.length;
  const r = await viaProxy(session, {
    ca: ca.certPem,
    host: o.host,
    method: o.method,
    path: `${o.path}${qs ? `?${qs}` : ''}`,
    headers: signed.headers as Record<string, string>,
    body: o.body,
  });
  return { status: r.status, body: r.body, seen: upstream.seen[before]! };
}

/** Recomputes the signature of what the upstream received, with the real key, as AWS would. */
async function verifiesWithRealKey(seen: Seen, service: string, region: string): Promise<boolean> {
  const url = new URL(seen.url, 'https://x');
  const auth = String(seen.headers.authorization ?? '');
  const m =
    /Credential=([^/]+)\/\d{8}\/[^/]+\/[^/]+\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]+)/.exec(
      auth,
    );
  if (!m) return false;
  const signedHeaders = m[2]!.split(';');
  const headers: Record<string, string> = {};
  for (const h of signedHeaders) headers[h] = String(seen.headers[h]);
  const d = String(seen.headers['x-amz-date']);
  const date = new Date(
    `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T${d.slice(9, 11)}:${d.slice(11, 13)}:${d.slice(13, 15)}Z`,
  );
  const out = await sdkSigner(REAL, region, service).sign(
    {
      method: seen.method,
      protocol: 'https:',
      hostname: String(seen.headers.host),
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers,
      body: seen.body,
    },
    { signingDate: date, signableHeaders: new Set(signedHeaders) },
  );
  return m[1] === REAL.accessKeyId && out.headers.authorization === auth;
}

describe('AWS SigV4 requests signed with the surrogate key', () => {
  it('give the container only surrogate keys, with their AKIA prefix', () => {
    const env = awsEnv(active);
    assert.ok(env.AWS_ACCESS_KEY_ID!.startsWith('AKIA'));
    assert.notEqual(env.AWS_ACCESS_KEY_ID, REAL.accessKeyId);
    assert.notEqual(env.AWS_SECRET_ACCESS_KEY, REAL.secretAccessKey);
    assert.equal(env.AWS_PROD_SECRET_ACCESS_KEY, env.AWS_SECRET_ACCESS_KEY);
    assert.doesNotMatch(JSON.stringify(env), /REALKEY|realSecret|REALSESSION/);
  });

  it('are re-signed with the real key: an S3 GET with an unsigned payload verifies with the SDK signer', async () => {
    const r = await send({
      host: S3,
      service: 's3',
      region: 'us-east-1',
      method: 'GET',
      path: '/my%20key.txt',
      headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    });
    assert.equal(r.status, 200, r.body);
    assert.ok(
      await verifiesWithRealKey(r.seen, 's3', 'us-east-1'),
      String(r.seen.headers.authorization),
    );
  });

  it('are re-signed for an S3 PUT whose payload hash is signed', async () => {
    const body = 'hello object';
    const r = await send({
      host: S3,
      service: 's3',
      region: 'us-east-1',
      method: 'PUT',
      path: '/obj',
      body,
      headers: {
        'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'),
        'content-type': 'text/plain',
      },
    });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.seen.body, body);
    assert.ok(await verifiesWithRealKey(r.seen, 's3', 'us-east-1'));
  });

  it('are re-signed for a service that signs the body without a hash header (the proxy hashes it)', async () => {
    const body = 'Action=SendMessage&MessageBody=hi';
    const r = await send({
      host: SQS,
      service: 'sqs',
      region: 'eu-west-1',
      method: 'POST',
      path: '/123/queue',
      body,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(r.status, 200, r.body);
    assert.ok(await verifiesWithRealKey(r.seen, 'sqs', 'eu-west-1'));
  });

  it('are re-signed in presigned query form', async () => {
    const r = await send({
      host: S3,
      service: 's3',
      region: 'us-east-1',
      method: 'GET',
      path: '/shared.bin',
      presign: true,
    });
    assert.equal(r.status, 200, r.body);
    const url = new URL(r.seen.url, 'https://x');
    assert.match(url.searchParams.get('X-Amz-Credential')!, new RegExp(`^${REAL.accessKeyId}/`));
    const expected = await sdkSigner(REAL, 'us-east-1', 's3').presign(
      {
        method: 'GET',
        protocol: 'https:',
        hostname: S3,
        path: '/shared.bin',
        query: {},
        headers: { host: S3 },
      },
      {
        expiresIn: 300,
        signingDate: new Date(
          url.searchParams
            .get('X-Amz-Date')!
            .replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'),
        ),
      },
    );
    assert.equal(url.searchParams.get('X-Amz-Signature'), expected.query!['X-Amz-Signature']);
  });

  it('refuse chunk-signed uploads with a reason the agent can act on', async () => {
    const r = await send({
      host: S3,
      service: 's3',
      region: 'us-east-1',
      method: 'PUT',
      path: '/big',
      headers: {
        'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
        'x-amz-decoded-content-length': '10',
      },
    });
    assert.equal(r.status, 403);
    assert.match(r.body, /aws_chunked_unsupported.*unsigned or whole-body payload signing/);
  });

  it('go to a host outside the scope unchanged, signed with the useless surrogate', async () => {
    const r = await send({
      host: OTHER,
      service: 's3',
      region: 'us-east-1',
      method: 'GET',
      path: '/x',
      headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    });
    assert.equal(r.status, 200);
    assert.match(
      String(r.seen.headers.authorization),
      new RegExp(`Credential=${sur.accessKeyId}/`),
    );
    assert.doesNotMatch(JSON.stringify(r.seen), /REALKEY|realSecret/);
  });
});

describe('AWS requests that cannot be re-signed', () => {
  const auth = `AWS4-HMAC-SHA256 Credential=${sur.accessKeyId}/20250101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`;
  const rows: Array<{
    name: string;
    code: string;
    path: string;
    headers: Record<string, string>;
    body?: string;
  }> = [
    {
      name: 'a header signature without X-Amz-Date',
      code: 'aws_no_date',
      path: '/object',
      headers: { authorization: auth, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    },
    {
      name: 'a presigned URL without X-Amz-Date',
      code: 'aws_bad_presign',
      path: `/object?X-Amz-Credential=${sur.accessKeyId}%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Expires=300&X-Amz-Signature=00`,
      headers: {},
    },
    {
      name: 'a body over 16 MB without its payload hash',
      code: 'aws_body_too_large',
      path: '/object',
      headers: { authorization: auth, 'x-amz-date': '20250101T000000Z' },
      body: 'x'.repeat(16 * 1024 * 1024 + 1),
    },
  ];
  for (const row of rows) {
    it(`are refused (${row.code}): ${row.name}, before reaching the upstream`, async () => {
      const before = upstream.seen.length;
      const r = await viaProxy(session, {
        ca: ca.certPem,
        host: S3,
        method: row.body ? 'PUT' : 'GET',
        path: row.path,
        headers: row.headers,
        body: row.body,
      });
      assert.equal(r.headers['x-errand-block'], row.code, r.body);
      assert.equal(upstream.seen.length, before, 'nothing reached the upstream');
    });
  }
});
