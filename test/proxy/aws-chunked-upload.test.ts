import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { chunkSignedUpload } from '../harness/aws-chunked-client.ts';
import { type AwsFixture, REAL, S3, startAwsFixture } from '../harness/aws-fixture.ts';
import { verifyHeaderSigned } from '../harness/aws-verifier.ts';
import { connectToSession, type Seen, viaProxy } from '../harness/upstream.ts';

let f: AwsFixture;
before(async () => {
  f = await startAwsFixture();
});
after(() => f.close());

const asSeen = (headers: Record<string, string>, body: Buffer): Seen => ({
  method: 'PUT',
  url: '/obj',
  headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])),
  body: body.toString(),
  bytes: body,
});

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(ok(), `waited 10 s for ${what}`);
}

/** Sends one upload through the proxy as the sandbox would; `seen`: what reached the upstream. */
async function upload(headers: Record<string, string>, body: Buffer) {
  const before = f.upstream.seen.length;
  const r = await viaProxy(f.session, {
    ca: f.ca.certPem,
    host: S3,
    method: 'PUT',
    path: '/obj',
    headers,
    body,
  });
  return { ...r, seen: f.upstream.seen[before], reached: f.upstream.seen.length - before };
}

describe('Chunk-signed S3 uploads from the sandbox', () => {
  it('are checked by a verifier that accepts what the SDK signed with the real key and rejects tampered chunks', async () => {
    for (const trailer of [false, true]) {
      const chunks = [randomBytes(8192), randomBytes(100)];
      const up = await chunkSignedUpload(REAL, {
        host: S3,
        path: '/obj',
        region: 'us-east-1',
        chunks,
        trailer,
      });
      assert.deepEqual(verifyHeaderSigned(asSeen(up.headers, up.body), REAL), {
        ok: true,
        payload: Buffer.concat(chunks),
      });
      const data = Buffer.from(up.body);
      data[200] = data[200]! ^ 1;
      assert.equal(verifyHeaderSigned(asSeen(up.headers, data), REAL).ok, false, 'a data byte');
      const sig = Buffer.from(up.body);
      sig[30] = sig[30] === 0x61 ? 0x62 : 0x61;
      assert.equal(verifyHeaderSigned(asSeen(up.headers, sig), REAL).ok, false, 'a signature');
      if (trailer) {
        const t = Buffer.from(
          up.body.toString('latin1').replace(/crc32:..../, 'crc32:AAAA'),
          'latin1',
        );
        assert.equal(verifyHeaderSigned(asSeen(up.headers, t), REAL).ok, false, 'the trailer');
      }
    }
  });

  for (const trailer of [false, true]) {
    const mode = `STREAMING-AWS4-HMAC-SHA256-PAYLOAD${trailer ? '-TRAILER' : ''}`;
    it(`are re-signed chunk by chunk for ${mode}: the real key verifies the seed, every chunk${trailer ? ' and the trailer' : ''}`, async () => {
      const chunks = [randomBytes(64 * 1024), randomBytes(64 * 1024), randomBytes(1000)];
      const up = await chunkSignedUpload(f.surrogate, {
        host: S3,
        path: '/obj',
        region: 'us-east-1',
        chunks,
        trailer,
      });
      const r = await upload(up.headers, up.body);
      assert.equal(r.status, 200, r.body);
      assert.equal(r.seen!.headers['x-amz-content-sha256'], mode);
      assert.equal(r.seen!.bytes.length, up.body.length, 'the body keeps its length');
      assert.deepEqual(verifyHeaderSigned(r.seen!, REAL), {
        ok: true,
        payload: Buffer.concat(chunks),
      });
      for (const sig of up.body.toString('latin1').matchAll(/signature[=:]([0-9a-f]{64})/g))
        assert.ok(!r.seen!.bytes.includes(sig[1]!), 'no surrogate signature goes upstream');
    });
  }

  it("are re-signed when the AWS SDK's S3 client streams one (STREAMING-UNSIGNED-PAYLOAD-TRAILER): the header only, the body as sent", async () => {
    const before = f.upstream.seen.length;
    const data = randomBytes(200_000);
    await f.s3Client().send(
      new PutObjectCommand({
        Bucket: 'bucket',
        Key: 'big.bin',
        Body: Readable.from([data.subarray(0, 70_000), data.subarray(70_000)]),
        ContentLength: data.length,
      }),
    );
    const seen = f.upstream.seen[before]!;
    assert.equal(seen.headers['x-amz-content-sha256'], 'STREAMING-UNSIGNED-PAYLOAD-TRAILER');
    // The verifier also checks the CRC32 trailer the client computed over what it sent.
    assert.deepEqual(verifyHeaderSigned(seen, REAL), { ok: true, payload: data });
  });

  for (const mode of [
    'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD',
    'STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER',
    'STREAMING-AWS4-HMAC-SHA256-EVENTS',
  ]) {
    it(`refuse ${mode} (aws_chunked_unsupported) before anything reaches the upstream`, async () => {
      const headers = {
        host: S3,
        'x-amz-content-sha256': mode,
        'x-amz-decoded-content-length': '10',
        'content-encoding': 'aws-chunked',
      };
      const signed = await new SignatureV4({
        credentials: f.surrogate,
        region: 'us-east-1',
        service: 's3',
        sha256: Hash.bind(null, 'sha256'),
        uriEscapePath: false,
      }).sign({ method: 'PUT', protocol: 'https:', hostname: S3, path: '/obj', headers });
      const r = await upload(signed.headers as Record<string, string>, Buffer.alloc(0));
      assert.equal(r.status, 403);
      assert.match(r.body, /"code":"aws_chunked_unsupported"/);
      assert.match(r.body, /STREAMING-UNSIGNED-PAYLOAD-TRAILER/, 'names what works instead');
      assert.equal(r.reached, 0);
    });
  }
});

describe('An aws-chunked upload errand cannot parse', () => {
  /**
   * Sends `good` and waits until the upstream holds the request, then sends `bad`: what
   * errand had re-signed is upstream by then, so the test sees exactly what it passed on.
   */
  async function uploadInTwoParts(headers: Record<string, string>, good: Buffer, bad: Buffer) {
    const seenBefore = f.upstream.seen.length;
    const abortedBefore = f.upstream.aborted.length;
    const raw = await connectToSession(f.session, 443);
    const socket = tlsConnect({ socket: raw, servername: S3, ca: f.ca.certPem });
    const agent = new HttpAgent();
    agent.createConnection = () => socket as never;
    const req = httpRequest({ agent, method: 'PUT', path: '/obj', headers });
    const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
      req.on('response', (res) => {
        let body = '';
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
    });
    req.write(good);
    await until('the upstream to get the request', () => f.upstream.inFlight() > 0);
    req.end(bad);
    const r = await response;
    await until(
      'the upstream to see the request cut off',
      () => f.upstream.aborted.length > abortedBefore,
    );
    socket.destroy();
    return {
      ...r,
      completed: f.upstream.seen.length - seenBefore,
      cutOff: f.upstream.aborted[abortedBefore]!,
    };
  }

  const sig = 'f'.repeat(64);
  const shapes = [
    {
      name: 'a chunk longer than its declared size',
      bad: (_frames: Buffer[]) =>
        Buffer.from(`10;chunk-signature=${sig}\r\n0123456789abcdef+extra\r\n`),
      good: 1,
    },
    {
      name: 'a chunk header without its signature',
      bad: () => Buffer.from('10\r\n0123456789abcdef\r\n0\r\n\r\n'),
      good: 1,
    },
    {
      name: 'bytes after a complete final chunk',
      bad: () => Buffer.from('GET /smuggled HTTP/1.1\r\n\r\n'),
      good: 3,
    },
  ];
  for (const s of shapes) {
    it(`is cut off at ${s.name}: the upstream gets a broken request holding only chunks errand parsed, and the refusal is logged`, async () => {
      const up = await chunkSignedUpload(f.surrogate, {
        host: S3,
        path: '/obj',
        region: 'us-east-1',
        chunks: [randomBytes(20_000), randomBytes(500)],
      });
      const good = Buffer.concat(up.frames.slice(0, s.good));
      const bad = s.bad(up.frames);
      const headers = { ...up.headers, 'content-length': String(good.length + bad.length) };
      const logged = f.log.length;
      const r = await uploadInTwoParts(headers, good, bad);
      assert.equal(r.status, 400, r.body);
      assert.match(r.body, /"code":"aws_chunked_malformed"/);
      assert.equal(r.completed, 0, 'no complete request reached the upstream');
      assert.equal(r.cutOff.bytes.length, good.length, 'only the chunks before the bad one');
      // The head and each chunk that went up verify with the real key; then the body stops
      // (short of Content-Length, so no server takes it for a whole request).
      const v = verifyHeaderSigned(r.cutOff, REAL);
      assert.ok(v.ok || /bad chunk header|cut short/.test(v.why), 'why' in v ? v.why : '');
      assert.ok(
        f.log
          .slice(logged)
          .some((e) => e.action === 'blocked' && e.code === 'aws_chunked_malformed'),
        JSON.stringify(f.log.slice(logged)),
      );
    });
  }
});
