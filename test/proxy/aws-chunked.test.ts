import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  AwsChunkedError,
  AwsChunkResigner,
  MAX_SIGNED_CHUNK,
} from '../../src/proxy/aws-chunked.ts';
import { awsSurrogatesFor, resignAws } from '../../src/proxy/index.ts';
import { chunkSignedUpload } from '../harness/aws-chunked-client.ts';
import { REAL, S3 } from '../harness/aws-fixture.ts';
import { verifyHeaderSigned } from '../harness/aws-verifier.ts';

const active = awsSurrogatesFor([{ name: 'AWS_PROD', ...REAL, hosts: ['*.amazonaws.com'] }]);
const sur = active[0]!.surrogate;

/** Re-signs an upload's head with `resignAws`; the resigner it returns is for the body. */
async function resigned(trailer = false, chunks = [randomBytes(9000), randomBytes(300)]) {
  const up = await chunkSignedUpload(sur, {
    host: S3,
    path: '/obj',
    region: 'us-east-1',
    chunks,
    trailer,
  });
  const req = { method: 'PUT', host: S3, target: '/obj', headers: { ...up.headers } };
  const r = await resignAws(req, active);
  assert.equal(r.kind, 'resigned');
  assert.ok(r.kind === 'resigned' && r.body instanceof AwsChunkResigner);
  return { up, req, resigner: r.body, chunks };
}

/** Another resigner for the same head: it chains from the same re-signed seed. */
async function freshResigner(
  req: { method: string; host: string; target: string },
  headers: Record<string, string>,
): Promise<AwsChunkResigner> {
  const r = await resignAws({ ...req, headers: { ...headers } }, active);
  assert.ok(r.kind === 'resigned' && r.body instanceof AwsChunkResigner);
  return r.body;
}

/** Feeds `parts` one by one; the bytes out, and the error if the resigner raised one. */
async function run(t: AwsChunkResigner, parts: Buffer[]): Promise<{ out: Buffer; error?: Error }> {
  const out: Buffer[] = [];
  t.on('data', (c: Buffer) => out.push(c));
  const done = new Promise<Error | undefined>((resolve) => {
    t.on('end', () => resolve(undefined));
    t.on('error', resolve);
  });
  for (const p of parts) if (!t.destroyed) t.write(p);
  if (!t.destroyed) t.end();
  const error = await done;
  return { out: Buffer.concat(out), error };
}

function seenOf(
  req: { method: string; target: string; headers: Record<string, unknown> },
  bytes: Buffer,
) {
  return {
    method: req.method,
    url: req.target,
    headers: req.headers as Record<string, string>,
    body: bytes.toString(),
    bytes,
  };
}

describe('The aws-chunked re-signer', () => {
  for (const trailer of [false, true]) {
    it(`re-signs every chunk${trailer ? ' and the signed trailer' : ''} so the real key verifies the chain, at the same length`, async () => {
      const { up, req, resigner, chunks } = await resigned(trailer);
      const { out, error } = await run(resigner, [up.body]);
      assert.equal(error, undefined);
      assert.equal(out.length, up.body.length);
      const v = verifyHeaderSigned(seenOf(req, out), REAL);
      assert.deepEqual(v, { ok: true, payload: Buffer.concat(chunks) });
      assert.equal(
        verifyHeaderSigned(seenOf(req, up.body), REAL).ok,
        false,
        'the surrogate chain does not verify',
      );
    });
  }

  it('gives the same bytes whether the body arrives whole, a byte at a time or in odd pieces', async () => {
    const { up, req } = await resigned(true);
    const whole = await run(await freshResigner(req, up.headers), [up.body]);
    const bytes: Buffer[] = [];
    for (let i = 0; i < up.body.length; i++) bytes.push(up.body.subarray(i, i + 1));
    const single = await run(await freshResigner(req, up.headers), bytes);
    const odd: Buffer[] = [];
    for (let i = 0, n = 1; i < up.body.length; i += n, n = ((n * 7) % 97) + 1)
      odd.push(up.body.subarray(i, i + n));
    const pieces = await run(await freshResigner(req, up.headers), odd);
    assert.equal(whole.error, undefined);
    assert.deepEqual(single.out, whole.out);
    assert.deepEqual(pieces.out, whole.out);
  });

  const sig = 'a'.repeat(64);
  const shapes: {
    name: string;
    trailer?: boolean;
    bad: (f: Buffer[]) => Buffer[];
    keep: number;
  }[] = [
    {
      name: 'a chunk header without its signature',
      bad: (f) => [f[0]!, Buffer.from('10\r\n0123456789abcdef\r\n')],
      keep: 1,
    },
    {
      name: 'a signature of 63 hex digits',
      bad: (f) => [f[0]!, Buffer.from(`10;chunk-signature=${sig.slice(1)}\r\n`)],
      keep: 1,
    },
    {
      name: 'a size that is not hex',
      bad: (f) => [f[0]!, Buffer.from(`zz;chunk-signature=${sig}\r\n`)],
      keep: 1,
    },
    {
      name: 'a chunk longer than its declared size',
      bad: (f) => [f[0]!, Buffer.from(`10;chunk-signature=${sig}\r\n0123456789abcdefX\r\n`)],
      keep: 1,
    },
    {
      name: 'a chunk line ended by a bare LF',
      bad: (f) => [f[0]!, Buffer.from(`10;chunk-signature=${sig}\n`)],
      keep: 1,
    },
    {
      name: `a chunk over ${MAX_SIGNED_CHUNK} bytes`,
      bad: (f) => [
        f[0]!,
        Buffer.from(`${(MAX_SIGNED_CHUNK + 1).toString(16)};chunk-signature=${sig}\r\n`),
      ],
      keep: 1,
    },
    {
      name: 'a chunk header longer than any signature line',
      bad: (f) => [f[0]!, Buffer.alloc(200, 0x31)],
      keep: 1,
    },
    {
      name: 'a body that ends inside a chunk',
      bad: (f) => [f[0]!, f[1]!.subarray(0, 100)],
      keep: 1,
    },
    { name: 'a body without its final chunk', bad: (f) => [f[0]!, f[1]!], keep: 2 },
    { name: 'bytes after the final chunk', bad: (f) => [...f, Buffer.from('X')], keep: 3 },
    {
      name: 'chunks that do not add up to x-amz-decoded-content-length',
      bad: (f) => [f[0]!, f[2]!],
      keep: 1,
    },
    {
      name: 'a trailer without its signature',
      trailer: true,
      bad: (f) => [f[0]!, f[1]!, f[2]!, Buffer.from('x-amz-checksum-crc32:AAAAAA==\r\n\r\n')],
      keep: 3,
    },
    {
      name: 'a trailer signature of the wrong length',
      trailer: true,
      bad: (f) => [
        f[0]!,
        f[1]!,
        f[2]!,
        Buffer.from(`x-amz-checksum-crc32:AAAAAA==\r\nx-amz-trailer-signature:${sig}0\r\n\r\n`),
      ],
      keep: 3,
    },
    {
      name: 'a trailer line with a space',
      trailer: true,
      bad: (f) => [f[0]!, f[1]!, f[2]!, Buffer.from('x-amz-checksum-crc32: AAAAAA==\r\n')],
      keep: 3,
    },
    {
      name: 'bytes after the trailer',
      trailer: true,
      bad: (f) => [...f, Buffer.from('X')],
      keep: 4,
    },
  ];
  for (const s of shapes) {
    it(`refuses ${s.name} and passes on no byte of the chunk it is in`, async () => {
      const { up, resigner, req } = await resigned(s.trailer);
      const good = await run(await freshResigner(req, up.headers), [up.body]);
      const parts = s.bad(up.frames);
      const { out, error } = await run(resigner, [Buffer.concat(parts)]);
      assert.ok(error instanceof AwsChunkedError, String(error));
      assert.equal(error.code, 'aws_chunked_malformed');
      const kept = up.frames.slice(0, s.keep).reduce((n, f) => n + f.length, 0);
      assert.deepEqual(out, good.out.subarray(0, kept));
    });
  }
});
