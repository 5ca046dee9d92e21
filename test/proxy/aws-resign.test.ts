import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { awsEnv, MAX_PRESIGNED_LIFETIME_SECONDS, resignAws } from '../../src/proxy/index.ts';
import {
  type AwsFixture,
  LOCKED,
  OTHER,
  REAL,
  S3,
  SQS,
  STS,
  startAwsFixture,
} from '../harness/aws-fixture.ts';
import { type AwsKey, verifyHeaderSigned, verifyPresigned } from '../harness/aws-verifier.ts';
import { type Seen, viaProxy } from '../harness/upstream.ts';

let f: AwsFixture;
before(async () => {
  f = await startAwsFixture();
});
after(() => f.close());

/** `applyChecksum: false` signs like boto3 does for most services: no x-amz-content-sha256. */
function sdkSigner(creds: AwsKey, region: string, service: string, applyChecksum = true) {
  return new SignatureV4({
    credentials: creds,
    region,
    service,
    sha256: Hash.bind(null, 'sha256'),
    uriEscapePath: service !== 's3',
    applyChecksum,
  });
}

/** Sends a request into the proxy as the sandbox would; `seen` is what reached the upstream. */
async function through(o: {
  host: string;
  method?: string;
  target: string;
  headers?: Record<string, string>;
  body?: string;
}): Promise<{ status: number; body: string; seen?: Seen; reached: number }> {
  const before = f.upstream.seen.length;
  const r = await viaProxy(f.session, {
    ca: f.ca.certPem,
    host: o.host,
    method: o.method ?? 'GET',
    path: o.target,
    headers: o.headers,
    body: o.body,
  });
  return {
    status: r.status,
    body: r.body,
    seen: f.upstream.seen[before],
    reached: f.upstream.seen.length - before,
  };
}

/** Signs like the AWS SDK with the surrogate key (header form) and sends it through the proxy. */
async function signAndSend(o: {
  host: string;
  service: string;
  region: string;
  method: string;
  path: string;
  query?: Record<string, string>;
  body?: string;
  headers?: Record<string, string>;
  date?: Date;
  applyChecksum?: boolean;
}) {
  const signed = await sdkSigner(f.surrogate, o.region, o.service, o.applyChecksum).sign(
    {
      method: o.method,
      protocol: 'https:',
      hostname: o.host,
      path: o.path,
      query: o.query ?? {},
      headers: { host: o.host, ...o.headers },
      body: o.body,
    },
    { signingDate: o.date },
  );
  return through({
    host: o.host,
    method: o.method,
    target: `${o.path}${o.query ? `?${encodeQuery(Object.entries(o.query))}` : ''}`,
    headers: signed.headers as Record<string, string>,
    body: o.body,
  });
}

const enc = (s: string) =>
  encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
/** A query as the AWS SDKs write one; a pair with value `undefined` is a bare key. */
function encodeQuery(pairs: [string, string | undefined][]): string {
  return pairs.map(([k, v]) => (v === undefined ? enc(k) : `${enc(k)}=${enc(v)}`)).join('&');
}
function flatten(q: Record<string, unknown>): [string, string][] {
  return Object.entries(q).flatMap(([k, v]) =>
    (Array.isArray(v) ? v : [v]).map((x) => [k, String(x)] as [string, string]),
  );
}
/** A presigned GET with the surrogate key, as the S3 presigner writes one: `path?query`. */
async function presignedTarget(
  host: string,
  path: string,
  o: { expiresIn?: number; signingDate?: Date } = {},
): Promise<string> {
  const p = await sdkSigner(f.surrogate, 'us-east-1', 's3').presign(
    {
      method: 'GET',
      protocol: 'https:',
      hostname: host,
      path,
      query: {},
      headers: { host, 'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD' },
    },
    { expiresIn: o.expiresIn ?? 300, signingDate: o.signingDate },
  );
  return `${path}?${encodeQuery(flatten(p.query!))}`;
}

/** The query of a URL as AWS reads it, sorted: two URLs carry the same parameters when equal. */
function params(url: string): string[] {
  const q = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
  return q
    .split('&')
    .filter(Boolean)
    .map((kv) => {
      const [k, v = ''] = kv.split('=') as [string, string?];
      const d = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
      return `${d(k)}=${d(v)}`;
    })
    .sort();
}
/** Fails with the verifier's reason. */
function assertVerified(v: { ok: boolean }): void {
  assert.ok(v.ok, 'why' in v ? String(v.why) : '');
}
const amzDate = (s: string) =>
  new Date(s.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'));

describe('AWS SigV4 requests signed with the surrogate key', () => {
  it('give the container only surrogate keys, with their AKIA prefix', () => {
    const env = awsEnv(f.active);
    assert.ok(env.AWS_ACCESS_KEY_ID!.startsWith('AKIA'));
    assert.notEqual(env.AWS_ACCESS_KEY_ID, REAL.accessKeyId);
    assert.notEqual(env.AWS_SECRET_ACCESS_KEY, REAL.secretAccessKey);
    assert.equal(env.AWS_PROD_SECRET_ACCESS_KEY, env.AWS_SECRET_ACCESS_KEY);
    assert.doesNotMatch(JSON.stringify(env), /REALKEY|realSecret|REALSESSION/);
  });

  it('are checked by a reference verifier that accepts what the SDK signed with the real key and rejects tampered requests', async () => {
    const signed = await sdkSigner(REAL, 'us-east-1', 's3').sign({
      method: 'GET',
      protocol: 'https:',
      hostname: S3,
      path: '/a%20b/c.txt',
      query: { versionId: 'v 1', tag: ['b', 'a'] },
      headers: { host: S3, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    });
    const seen: Seen = {
      method: 'GET',
      url: '/a%20b/c.txt?versionId=v%201&tag=b&tag=a',
      headers: Object.fromEntries(
        Object.entries(signed.headers).map(([k, v]) => [k.toLowerCase(), v]),
      ),
      body: '',
      bytes: Buffer.alloc(0),
    };
    assert.deepEqual(verifyHeaderSigned(seen, REAL), { ok: true, payload: Buffer.alloc(0) });
    assert.equal(verifyHeaderSigned({ ...seen, url: '/a%20b/d.txt' }, REAL).ok, false);
    assert.equal(verifyHeaderSigned({ ...seen, method: 'DELETE' }, REAL).ok, false);
    assert.equal(verifyHeaderSigned(seen, { ...REAL, secretAccessKey: 'x' }).ok, false);

    const url = new URL(
      await getSignedUrl(
        new S3Client({ region: 'us-east-1', credentials: REAL }),
        new GetObjectCommand({ Bucket: 'bucket', Key: 'k y', VersionId: 'v1' }),
        { expiresIn: 300 },
      ),
    );
    const pre: Seen = { ...seen, url: url.pathname + url.search, headers: { host: url.host } };
    assert.deepEqual(verifyPresigned(pre, REAL), { ok: true, expiresIn: 300 });
    assert.equal(verifyPresigned({ ...pre, url: pre.url.replace('v1', 'v2') }, REAL).ok, false);
    assert.equal(
      verifyPresigned({ ...pre, url: pre.url.replace('k%20y', 'k%20z') }, REAL).ok,
      false,
    );
  });

  it('are re-signed with the real key: an S3 GET with an unsigned payload verifies', async () => {
    const r = await signAndSend({
      host: S3,
      service: 's3',
      region: 'us-east-1',
      method: 'GET',
      path: '/my%20key.txt',
      headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(verifyHeaderSigned(r.seen!, REAL), { ok: true, payload: Buffer.alloc(0) });
  });

  it('are re-signed for an S3 PUT whose payload hash is signed', async () => {
    const body = 'hello object';
    const r = await signAndSend({
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
    assert.equal(r.seen!.body, body);
    assert.equal(verifyHeaderSigned(r.seen!, REAL).ok, true);
  });

  const sqsSigning = [
    ['as the AWS SDK signs it, with x-amz-content-sha256', true],
    [
      'as boto3 signs it, without x-amz-content-sha256: errand hashes the body and sends no header it signed alone',
      false,
    ],
  ] as const;
  for (const [how, applyChecksum] of sqsSigning) {
    it(`are re-signed for an SQS request signed ${how}`, async () => {
      const r = await signAndSend({
        host: SQS,
        service: 'sqs',
        region: 'eu-west-1',
        method: 'POST',
        path: '/123/queue',
        body: 'Action=SendMessage&MessageBody=hi',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        applyChecksum,
      });
      assert.equal(r.status, 200, r.body);
      assert.equal(r.seen!.headers['x-amz-content-sha256'] !== undefined, applyChecksum);
      assertVerified(verifyHeaderSigned(r.seen!, REAL));
    });
  }

  it('are re-signed when the AWS SDK S3 client sends them (x-id query, empty-body hash, whole-body PUT)', async () => {
    const before = f.upstream.seen.length;
    const s3 = f.s3Client();
    await s3.send(
      new GetObjectCommand({ Bucket: 'bucket', Key: 'dir/x y+ü.txt', VersionId: 'v1' }),
    );
    await s3.send(new PutObjectCommand({ Bucket: 'bucket', Key: 'small', Body: 'hello' }));
    const [get, put] = f.upstream.seen.slice(before);
    assert.match(get!.url, /^\/dir\/x%20y%2B%C3%BC\.txt\?versionId=v1&x-id=GetObject$/);
    assertVerified(verifyHeaderSigned(get!, REAL));
    assert.deepEqual(verifyHeaderSigned(put!, REAL), { ok: true, payload: Buffer.from('hello') });
  });

  it('go to a host outside the scope unchanged, signed with the useless surrogate', async () => {
    const r = await signAndSend({
      host: OTHER,
      service: 's3',
      region: 'us-east-1',
      method: 'GET',
      path: '/x',
      headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    });
    assert.equal(r.status, 200);
    assert.match(
      String(r.seen!.headers.authorization),
      new RegExp(`Credential=${f.surrogate.accessKeyId}/`),
    );
    assert.doesNotMatch(JSON.stringify(r.seen), /REALKEY|realSecret/);
  });
});

describe('The path errand re-signs and sends is the path the allowlist checked', () => {
  it('refuses a presigned request whose target starts with // (read as a host by URL parsers) before the allowlist or the signer sees it', async () => {
    // The allowlist reads `//public/secret.txt` as /public/secret.txt; URL reads `public` as
    // a host and /secret.txt as the path, which a re-signer would sign and send.
    const r = await through({
      host: LOCKED,
      target: await presignedTarget(LOCKED, '//public/secret.txt'),
    });
    assert.equal(r.status, 400, r.body);
    assert.match(r.body, /"code":"bad_target"/);
    assert.equal(r.reached, 0, `reached the upstream as ${r.seen?.url}`);
    const plain = await through({ host: OTHER, target: '//evil.example/x' });
    assert.equal(plain.status, 400);
    assert.equal(plain.reached, 0);
  });

  it('lets a presigned request for an allowed path of the locked bucket through, re-signed', async () => {
    const target = await presignedTarget(LOCKED, '/public/readme.txt');
    const r = await through({ host: LOCKED, target });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.seen!.url.split('?')[0], '/public/readme.txt');
    assert.equal(verifyPresigned(r.seen!, REAL).ok, true);
  });

  it('refuses a // target when the re-signer is called directly', async () => {
    const r = await resignAws(
      {
        method: 'GET',
        host: S3,
        target: (await presignedTarget(S3, '//bucket2.s3.amazonaws.com/key')) as string,
        headers: { host: S3 },
      },
      f.active,
    );
    assert.equal(r.kind, 'refused');
    assert.equal((r as { code: string }).code, 'bad_target');
  });

  it('sends a presigned S3 key with %20, %2F, UTF-8 and braces upstream byte for byte as checked, and it verifies', async () => {
    const path = '/dir/a%2Fb/my%20key%2B%C3%BC%20{v1}.txt';
    const target = await presignedTarget(S3, path);
    const r = await through({ host: S3, target });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.seen!.url.split('?')[0], path);
    assertVerified(verifyPresigned(r.seen!, REAL));
  });

  it('re-signs a header-signed S3 key with braces over the path it sends', async () => {
    const r = await signAndSend({
      host: S3,
      service: 's3',
      region: 'us-east-1',
      method: 'GET',
      path: '/dir/{v1}%20x.txt',
      headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.seen!.url, '/dir/{v1}%20x.txt');
    assertVerified(verifyHeaderSigned(r.seen!, REAL));
  });
});

describe('A signature errand makes with the real key names the host it was checked for', () => {
  const day = () => new Date().toISOString().replace(/[-:]/g, '').slice(0, 8);
  const longDate = () => `${new Date().toISOString().replace(/[-:]|\.\d{3}/g, '')}`;
  /** A header-signed GET with the surrogate key; errand never checks the surrogate's signature. */
  const headerSigned = (signedHeaders: string, extra: Record<string, string> = {}) => {
    const date = longDate();
    return through({
      host: S3,
      target: '/key.txt',
      headers: {
        ...extra,
        'x-amz-date': date,
        'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
        authorization: `AWS4-HMAC-SHA256 Credential=${f.surrogate.accessKeyId}/${date.slice(0, 8)}/us-east-1/s3/aws4_request, SignedHeaders=${signedHeaders}, Signature=${'0'.repeat(64)}`,
      },
    });
  };

  for (const signed of ['x-amz-content-sha256;x-amz-date', 'Host;x-amz-content-sha256;x-amz-date'])
    it(`refuses to re-sign a request whose SignedHeaders (${signed}) leave out host, which would sign it for every host`, async () => {
      const r = await headerSigned(signed);
      assert.equal(r.status, 403, r.body);
      assert.match(r.body, /"code":"aws_host_unsigned"/);
      assert.equal(r.reached, 0, 'no request signed with the real key went out');
    });

  it('refuses to re-sign a presigned URL whose X-Amz-SignedHeaders leave out host', async () => {
    const target = (await presignedTarget(S3, '/key.txt')).replace(
      /X-Amz-SignedHeaders=[^&]*/,
      'X-Amz-SignedHeaders=x-amz-content-sha256',
    );
    assert.ok(target.includes(`X-Amz-Credential=${f.surrogate.accessKeyId}%2F${day()}`));
    const r = await through({ host: S3, target });
    assert.equal(r.status, 403, r.body);
    assert.match(r.body, /"code":"aws_host_unsigned"/);
    assert.equal(r.reached, 0, 'no URL signed with the real key went out');
  });

  it('signs and sends the checked host, not the Host header spelt with capitals, a trailing dot or a port', async () => {
    const r = await headerSigned('host;x-amz-content-sha256;x-amz-date', {
      host: `${S3.toUpperCase()}.:443`,
    });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.seen!.headers.host, S3);
    assertVerified(verifyHeaderSigned(r.seen!, REAL));
  });

  it('re-signs the same request with host signed, and it verifies', async () => {
    const r = await headerSigned('host;x-amz-content-sha256;x-amz-date');
    assert.equal(r.status, 200, r.body);
    assertVerified(verifyHeaderSigned(r.seen!, REAL));
  });
});

describe('What a re-signed request can reach beyond the host and path the allowlist checked', () => {
  const copy = (source: string) =>
    signAndSend({
      host: S3,
      service: 's3',
      region: 'us-east-1',
      method: 'PUT',
      path: '/copied.txt',
      headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'x-amz-copy-source': source },
    });

  it('refuses to re-sign an S3 CopyObject whose x-amz-copy-source names an object the allowlist does not admit', async () => {
    // LOCKED admits only /public/*; the copy would read locked/secret.txt with the real
    // key into a bucket the sandbox can read.
    for (const source of [
      '/locked/secret.txt',
      'locked/secret.txt?versionId=3',
      'locked/public/..%2Fsecret.txt',
    ]) {
      const r = await copy(source);
      assert.equal(r.reached, 0, `a CopyObject of ${source} went out re-signed`);
      assert.equal(r.status, 403, r.body);
      assert.match(r.body, /"code":"aws_copy_source_not_allowed"/);
    }
  });

  it('refuses a copy source errand cannot place (an access point ARN, no key)', async () => {
    for (const source of ['arn:aws:s3:us-east-1:123456789012:accesspoint/ap/object/k', 'locked']) {
      const r = await copy(source);
      assert.equal(r.reached, 0, source);
      assert.match(r.body, /"code":"aws_copy_source_not_allowed"/);
    }
  });

  it('re-signs a CopyObject whose source the allowlist lets the sandbox read', async () => {
    const r = await copy('/locked/public/readme.txt');
    assert.equal(r.status, 200, r.body);
    assert.equal(r.reached, 1);
    assertVerified(verifyHeaderSigned(r.seen!, REAL));
  });
});

describe('Presigned URLs with their own query parameters', () => {
  const s3Unsigned = { 'X-Amz-Content-Sha256': 'UNSIGNED-PAYLOAD' };
  interface Shape {
    name: string;
    host?: string;
    service?: string;
    path?: string;
    query: Record<string, string | string[]>;
    headers?: Record<string, string>;
    /** Headers signed but not hoisted into the query, sent as headers. */
    keepHeaders?: string[];
    /** Headers that feed the payload hash without being signed (boto3's implied UNSIGNED-PAYLOAD). */
    unsigned?: string[];
    order: 'extras-first' | 'extras-last';
    bare?: string[];
  }
  const shapes: Shape[] = [
    {
      name: 'an extra parameter before the X-Amz-* ones',
      query: { versionId: 'v 1+2' },
      headers: s3Unsigned,
      order: 'extras-first',
    },
    {
      name: 'an extra parameter after the X-Amz-* ones',
      query: { 'response-content-disposition': 'attachment; filename="a b+c ü.txt"' },
      headers: s3Unsigned,
      order: 'extras-last',
    },
    {
      name: 'a repeated key',
      query: { tag: ['b', 'a', 'a b'] },
      headers: s3Unsigned,
      order: 'extras-first',
    },
    {
      name: 'values that need encoding',
      query: { 'x-odd key': "!'()*~ /?&=#%+ü" },
      headers: s3Unsigned,
      order: 'extras-last',
    },
    {
      name: 'an empty value and a bare key',
      query: { 'response-cache-control': '', acl: '' },
      headers: s3Unsigned,
      order: 'extras-first',
      bare: ['acl'],
    },
    {
      name: 'an implied UNSIGNED-PAYLOAD, as boto3 presigns S3',
      query: { versionId: 'v1' },
      headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
      unsigned: ['x-amz-content-sha256'],
      order: 'extras-last',
    },
    {
      name: 'a signed SSE-C header the client sends as a header',
      query: { partNumber: '1' },
      headers: { ...s3Unsigned, 'x-amz-server-side-encryption-customer-algorithm': 'AES256' },
      keepHeaders: ['x-amz-server-side-encryption-customer-algorithm'],
      order: 'extras-first',
    },
    {
      name: 'a service other than S3 (STS), signed over an empty payload',
      host: STS,
      service: 'sts',
      path: '/',
      query: { Action: 'GetCallerIdentity', Version: '2011-06-15' },
      order: 'extras-first',
    },
  ];

  for (const s of shapes) {
    it(`re-sign to the signature the SDK gives with the real key: ${s.name}`, async () => {
      const host = s.host ?? S3;
      const service = s.service ?? 's3';
      const path = s.path ?? '/dir/obj.txt';
      const date = new Date();
      const request = {
        method: 'GET',
        protocol: 'https:',
        hostname: host,
        path,
        query: s.query,
        headers: { host, ...s.headers },
      };
      const options = {
        expiresIn: 300,
        signingDate: date,
        unhoistableHeaders: new Set(s.keepHeaders ?? s.unsigned ?? []),
        unsignableHeaders: new Set(s.unsigned ?? []),
      };
      const p = await sdkSigner(f.surrogate, 'us-east-1', service).presign(request, options);
      const all = flatten(p.query!);
      const extras = all.filter(([k]) => !/^X-Amz-/.test(k));
      const amz = all.filter(([k]) => /^X-Amz-/.test(k));
      const ordered = s.order === 'extras-first' ? [...extras, ...amz] : [...amz, ...extras];
      const pairs = ordered.map(
        ([k, v]) => [k, s.bare?.includes(k) ? undefined : v] as [string, string | undefined],
      );
      const sent: Record<string, string> = {};
      for (const h of s.keepHeaders ?? []) sent[h] = s.headers![h]!;
      const r = await through({ host, target: `${path}?${encodeQuery(pairs)}`, headers: sent });
      assert.equal(r.status, 200, r.body);

      const expected = await sdkSigner(REAL, 'us-east-1', service).presign(request, options);
      const seenQuery = new URLSearchParams(r.seen!.url.split('?')[1]);
      assert.equal(seenQuery.get('X-Amz-Signature'), expected.query!['X-Amz-Signature']);
      assert.deepEqual(
        params(r.seen!.url),
        params(`?${encodeQuery(flatten(expected.query!))}`),
        'the upstream got the parameters the reference signed',
      );
      assertVerified(verifyPresigned(r.seen!, REAL));
    });
  }

  const commands = [
    {
      name: 'GetObject',
      cmd: () => new GetObjectCommand({ Bucket: 'bucket', Key: 'dir/a b+ü.txt' }),
    },
    {
      name: 'GetObject with VersionId and ResponseContentDisposition',
      cmd: () =>
        new GetObjectCommand({
          Bucket: 'bucket',
          Key: 'report.csv',
          VersionId: 'v 1',
          ResponseContentDisposition: 'attachment; filename="r 1+2.csv"',
        }),
    },
    { name: 'PutObject', cmd: () => new PutObjectCommand({ Bucket: 'bucket', Key: 'up.bin' }) },
  ];
  for (const c of commands) {
    it(`re-sign URLs from the AWS SDK's S3 presigner (X-Amz-Content-Sha256, x-id): ${c.name}`, async () => {
      const signingDate = new Date();
      const client = (credentials: AwsKey) => new S3Client({ region: 'us-east-1', credentials });
      const url = new URL(
        await getSignedUrl(client(f.surrogate), c.cmd(), { expiresIn: 600, signingDate }),
      );
      const method = c.name === 'PutObject' ? 'PUT' : 'GET';
      const r = await through({
        host: url.host,
        method,
        target: url.pathname + url.search,
        body: method === 'PUT' ? 'data' : undefined,
      });
      assert.equal(r.status, 200, r.body);
      const expected = new URL(
        await getSignedUrl(client(REAL), c.cmd(), { expiresIn: 600, signingDate }),
      );
      assert.deepEqual(params(r.seen!.url), params(expected.search));
      assertVerified(verifyPresigned(r.seen!, REAL));
    });
  }

  it('refuse a presigned URL that repeats a signing parameter (aws_bad_presign)', async () => {
    const presigned = await presignedTarget(S3, '/k');
    const credential = new URLSearchParams(presigned.split('?')[1])
      .get('X-Amz-Credential')!
      .replace(/^[^/]+/, REAL.accessKeyId);
    const target = `${presigned}&X-Amz-Credential=${enc(credential)}`;
    const r = await through({ host: S3, target });
    assert.equal(r.status, 403, r.body);
    assert.match(r.body, /"code":"aws_bad_presign"/);
    assert.equal(r.reached, 0);
  });

  it('refuse a query with an invalid percent-encoding when a surrogate key signed it (aws_bad_query)', async () => {
    const presigned = await presignedTarget(S3, '/k');
    const r = await through({ host: S3, target: `${presigned}&bad=%zz` });
    assert.equal(r.status, 403, r.body);
    assert.match(r.body, /"code":"aws_bad_query"/);
    assert.equal(r.reached, 0);
    const plain = await through({ host: S3, target: '/k?q=100%' });
    assert.equal(plain.status, 200, 'a query no surrogate signed passes as it is');
    assert.equal(plain.seen!.url, '/k?q=100%');
  });
});

describe('The lifetime of a presigned URL re-signed with the real key', () => {
  const presigned = async (o: { expiresIn: number; signingDate: Date }) =>
    through({ host: S3, target: await presignedTarget(S3, '/shared.bin', o) });

  it(`is capped at ${MAX_PRESIGNED_LIFETIME_SECONDS} s when the URL asks for seven days`, async () => {
    const r = await presigned({ expiresIn: 7 * 24 * 3600, signingDate: new Date() });
    assert.equal(r.status, 200, r.body);
    const v = verifyPresigned(r.seen!, REAL);
    assert.equal(v.ok, true);
    // Counted from the re-signing: X-Amz-Date has whole seconds, so a second may have passed.
    const { expiresIn } = v as { expiresIn: number };
    assert.ok(
      expiresIn >= MAX_PRESIGNED_LIFETIME_SECONDS &&
        expiresIn <= MAX_PRESIGNED_LIFETIME_SECONDS + 2,
      `X-Amz-Expires ${expiresIn}`,
    );
  });

  it('is counted from the re-signing for a URL signed two hours earlier', async () => {
    const signingDate = new Date(Date.now() - 2 * 3600 * 1000);
    const r = await presigned({ expiresIn: 86400, signingDate });
    assert.equal(r.status, 200, r.body);
    const v = verifyPresigned(r.seen!, REAL);
    assert.equal(v.ok, true);
    const { expiresIn } = v as { expiresIn: number };
    const end =
      amzDate(new URLSearchParams(r.seen!.url.split('?')[1]).get('X-Amz-Date')!).getTime() +
      expiresIn * 1000;
    assert.ok(
      end <= Date.now() + MAX_PRESIGNED_LIFETIME_SECONDS * 1000,
      `valid until ${new Date(end).toISOString()}`,
    );
    assert.ok(expiresIn > 2 * 3600, 'still valid now');
  });

  it('ends within an hour of the re-signing for a URL dated ten minutes ahead (within the allowed skew)', async () => {
    const r = await presigned({
      expiresIn: 7 * 24 * 3600,
      signingDate: new Date(Date.now() + 600_000),
    });
    assert.equal(r.status, 200, r.body);
    const v = verifyPresigned(r.seen!, REAL);
    assert.equal(v.ok, true);
    const end =
      amzDate(new URLSearchParams(r.seen!.url.split('?')[1]).get('X-Amz-Date')!).getTime() +
      (v as { expiresIn: number }).expiresIn * 1000;
    assert.ok(
      end <= Date.now() + MAX_PRESIGNED_LIFETIME_SECONDS * 1000,
      `valid until ${new Date(end).toISOString()}, more than an hour from now`,
    );
  });

  it('keeps a shorter lifetime as it is', async () => {
    const r = await presigned({ expiresIn: 300, signingDate: new Date() });
    assert.deepEqual(verifyPresigned(r.seen!, REAL), { ok: true, expiresIn: 300 });
  });

  it('cannot be pushed into the future: a URL dated a day ahead is refused (aws_date_skew)', async () => {
    const r = await presigned({ expiresIn: 3600, signingDate: new Date(Date.now() + 86400_000) });
    assert.equal(r.status, 403, r.body);
    assert.match(r.body, /"code":"aws_date_skew"/);
    assert.equal(r.reached, 0);
  });

  it('a header-signed request dated a day ahead is refused too (aws_date_skew)', async () => {
    const r = await signAndSend({
      host: S3,
      service: 's3',
      region: 'us-east-1',
      method: 'GET',
      path: '/k',
      headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
      date: new Date(Date.now() + 86400_000),
    });
    assert.equal(r.status, 403, r.body);
    assert.match(r.body, /"code":"aws_date_skew"/);
    assert.equal(r.reached, 0);
  });
});

describe('AWS requests that cannot be re-signed', () => {
  // The fixture's surrogate exists once `before` ran: the header is made per test.
  const now = () => new Date().toISOString().replace(/[-:]|\.\d{3}/g, '');
  const auth = () =>
    `AWS4-HMAC-SHA256 Credential=${f.surrogate.accessKeyId}/${now().slice(0, 8)}/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`;
  const rows: Array<{
    name: string;
    code: string;
    path: string | (() => string);
    headers: () => Record<string, string>;
    body?: string;
  }> = [
    {
      name: 'a header signature without X-Amz-Date',
      code: 'aws_no_date',
      path: '/object',
      headers: () => ({ authorization: auth(), 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' }),
    },
    {
      name: 'a presigned URL without X-Amz-Date',
      code: 'aws_bad_presign',
      path: () =>
        `/object?X-Amz-Credential=${f.surrogate.accessKeyId}%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Expires=300&X-Amz-Signature=00`,
      headers: () => ({}),
    },
    {
      name: 'a body over 16 MB without its payload hash',
      code: 'aws_body_too_large',
      path: '/object',
      headers: () => ({ authorization: auth(), 'x-amz-date': now() }),
      body: 'x'.repeat(16 * 1024 * 1024 + 1),
    },
  ];
  for (const row of rows) {
    it(`are refused (${row.code}): ${row.name}, before reaching the upstream`, async () => {
      const before = f.upstream.seen.length;
      const r = await viaProxy(f.session, {
        ca: f.ca.certPem,
        host: S3,
        method: row.body ? 'PUT' : 'GET',
        path: typeof row.path === 'string' ? row.path : row.path(),
        headers: row.headers(),
        body: row.body,
      });
      assert.equal(r.headers['x-errand-block'], row.code, r.body);
      assert.equal(f.upstream.seen.length, before, 'nothing reached the upstream');
    });
  }
});
