import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsKey } from './aws-verifier.ts';

/**
 * An S3 upload with signed chunks (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or with
 * `trailer` its -TRAILER form carrying a signed CRC32), signed the way the AWS SDKs for Java
 * and Go sign it: the request with the AWS SDK's signer, each chunk's signature chained from
 * the one before with the SDK's event signing, the trailer with its string signing.
 */
export async function chunkSignedUpload(
  key: AwsKey,
  o: { host: string; path: string; region: string; chunks: Buffer[]; trailer?: boolean },
): Promise<{ headers: Record<string, string>; body: Buffer; frames: Buffer[] }> {
  const signer = new SignatureV4({
    credentials: key,
    region: o.region,
    service: 's3',
    sha256: Hash.bind(null, 'sha256'),
    uriEscapePath: false,
  });
  const date = new Date();
  const longDate = date.toISOString().replace(/[-:]|\.\d{3}/g, '');
  const scope = `${longDate.slice(0, 8)}/${o.region}/s3/aws4_request`;
  const payload = Buffer.concat(o.chunks);
  const checksum = Buffer.alloc(4);
  checksum.writeUInt32BE(crc32(payload));
  const trailerLine = `x-amz-checksum-crc32:${checksum.toString('base64')}`;
  const sig64 = '0'.repeat(64);
  const frame = (c: Buffer, sig: string) =>
    Buffer.concat([
      Buffer.from(`${c.length.toString(16)};chunk-signature=${sig}\r\n`),
      c,
      c.length || !o.trailer ? Buffer.from('\r\n') : Buffer.alloc(0),
    ]);
  const tail = (sig: string) =>
    o.trailer
      ? Buffer.from(`${trailerLine}\r\nx-amz-trailer-signature:${sig}\r\n\r\n`)
      : Buffer.alloc(0);
  const all = [...o.chunks, Buffer.alloc(0)];
  const length = all.reduce((n, c) => n + frame(c, sig64).length, 0) + tail(sig64).length;
  const headers: Record<string, string> = {
    host: o.host,
    'content-encoding': 'aws-chunked',
    'content-length': String(length),
    'x-amz-content-sha256': `STREAMING-AWS4-HMAC-SHA256-PAYLOAD${o.trailer ? '-TRAILER' : ''}`,
    'x-amz-decoded-content-length': String(payload.length),
    ...(o.trailer ? { 'x-amz-trailer': 'x-amz-checksum-crc32' } : {}),
  };
  const signed = await signer.sign(
    { method: 'PUT', protocol: 'https:', hostname: o.host, path: o.path, query: {}, headers },
    { signingDate: date },
  );
  let prev = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization))![1]!;
  const frames: Buffer[] = [];
  for (const c of all) {
    prev = await signer.sign(
      { headers: new Uint8Array(0), payload: c },
      { signingDate: date, priorSignature: prev },
    );
    frames.push(frame(c, prev));
  }
  if (o.trailer) {
    const canonical = createHash('sha256').update(`${trailerLine}\n`).digest('hex');
    const sig = await signer.sign(
      ['AWS4-HMAC-SHA256-TRAILER', longDate, scope, prev, canonical].join('\n'),
      { signingDate: date },
    );
    frames.push(tail(sig));
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed.headers)) out[k] = String(v);
  return { headers: out, body: Buffer.concat(frames), frames };
}
