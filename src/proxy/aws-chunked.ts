import { createHash, createHmac } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * The largest chunk errand holds to re-sign. A chunk's signature comes before its data and
 * covers all of it, so each chunk is held whole; SDKs send 64 KiB to 1 MiB.
 */
export const MAX_SIGNED_CHUNK = 8 * 1024 * 1024;
/** `<hex size>;chunk-signature=<64 hex>`, with room for leading zeros. */
const MAX_CHUNK_LINE = 128;
/** All trailer lines together (one checksum header in practice). */
const MAX_TRAILER = 4096;
const EMPTY_SHA256 = createHash('sha256').digest('hex');
const CRLF = Buffer.from('\r\n');
const CHUNK_LINE = /^([0-9a-fA-F]{1,16});chunk-signature=[0-9a-f]{64}$/;
const TRAILER_LINE = /^([a-z0-9-]+):([\x21-\x7e]*)$/;
const TRAILER_SIGNATURE = /^x-amz-trailer-signature:[0-9a-f]{64}$/;

/** A chunk-signed body errand could not parse; the upload is cut off, never passed on. */
export class AwsChunkedError extends Error {
  readonly code = 'aws_chunked_malformed';
}

/** What the chunk signatures chain from: the re-signed request's own signing. */
export interface ChunkSigning {
  /** The SigV4 signing key of the real credential for the request's day, region and service. */
  key: Buffer;
  /** The request's X-Amz-Date (`20250102T030405Z`). */
  longDate: string;
  /** `<day>/<region>/<service>/aws4_request` */
  scope: string;
  /** The re-signed request's signature, which the first chunk's signature chains from. */
  seed: string;
  /** STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: a signed trailer follows the last chunk. */
  trailer: boolean;
  /** x-amz-decoded-content-length, when sent: the chunks' data must add up to it. */
  decodedLength?: number;
}

/** kSigning of SigV4: HMAC chained over day, region, service and `aws4_request`. */
export function sigV4SigningKey(
  secretAccessKey: string,
  day: string,
  region: string,
  service: string,
): Buffer {
  let key: Buffer = Buffer.from(`AWS4${secretAccessKey}`);
  for (const part of [day, region, service, 'aws4_request'])
    key = createHmac('sha256', key).update(part).digest();
  return key;
}

type State = 'line' | 'data' | 'data-end' | 'trailer' | 'trailer-end' | 'done';

/**
 * Rewrites each `chunk-signature=` of an aws-chunked body (and the trailer's
 * `x-amz-trailer-signature`) with the signature the real key gives, chained from the
 * re-signed seed. Signatures keep their 64 hex digits, so the body keeps its length and
 * Content-Length stays true. The framing is parsed strictly and incrementally; anything
 * else is an `AwsChunkedError`, and no byte of the chunk it was found in is passed on.
 */
export class AwsChunkResigner extends Transform {
  readonly #s: ChunkSigning;
  #state: State = 'line';
  /** Bytes of a line (or a CRLF) not yet complete. */
  #pending: Buffer = Buffer.alloc(0);
  #sizeText = '';
  #need = 0;
  #final = false;
  #parts: Buffer[] = [];
  #hash = createHash('sha256');
  #prev: string;
  #decoded = 0;
  #trailers: string[] = [];
  #trailerBytes = 0;

  constructor(signing: ChunkSigning) {
    super();
    this.#s = signing;
    this.#prev = signing.seed;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.#feed(chunk);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    // The CRLF after a signed trailer is optional: clients differ.
    if (this.#state === 'done' || (this.#state === 'trailer-end' && !this.#pending.length)) cb();
    else cb(new AwsChunkedError('the aws-chunked upload ended before its final chunk'));
  }

  #sign(kind: 'PAYLOAD' | 'TRAILER', hashes: string): string {
    const { longDate, scope, key } = this.#s;
    const toSign = `AWS4-HMAC-SHA256-${kind}\n${longDate}\n${scope}\n${this.#prev}\n${hashes}`;
    this.#prev = createHmac('sha256', key).update(toSign).digest('hex');
    return this.#prev;
  }

  #feed(input: Buffer): void {
    const b = this.#pending.length ? Buffer.concat([this.#pending, input]) : input;
    this.#pending = Buffer.alloc(0);
    let i = 0;
    while (i < b.length) {
      switch (this.#state) {
        case 'data': {
          const part = b.subarray(i, i + this.#need);
          this.#hash.update(part);
          this.#parts.push(part);
          this.#need -= part.length;
          i += part.length;
          if (this.#need === 0) this.#state = 'data-end';
          continue;
        }
        case 'data-end':
        case 'trailer-end': {
          if (b.length - i < 2) {
            this.#pending = Buffer.from(b.subarray(i));
            return;
          }
          if (b[i] !== 0x0d || b[i + 1] !== 0x0a)
            throw new AwsChunkedError(
              this.#state === 'data-end'
                ? 'an aws-chunked chunk is longer than its declared size or lacks its CRLF'
                : 'the aws-chunked upload has bytes after its trailer',
            );
          i += 2;
          if (this.#state === 'data-end') this.#endChunk();
          else {
            this.push(CRLF);
            this.#state = 'done';
          }
          continue;
        }
        case 'done':
          throw new AwsChunkedError('the aws-chunked upload has bytes after its final chunk');
        default: {
          const limit = this.#state === 'line' ? MAX_CHUNK_LINE : MAX_TRAILER - this.#trailerBytes;
          const nl = b.indexOf(0x0a, i);
          const end = nl < 0 ? b.length : nl;
          if (end - i > limit)
            throw new AwsChunkedError(
              this.#state === 'line'
                ? 'an aws-chunked chunk header is longer than `<hex size>;chunk-signature=<signature>`'
                : `the aws-chunked trailer is longer than ${MAX_TRAILER} bytes`,
            );
          if (nl < 0) {
            this.#pending = Buffer.from(b.subarray(i));
            return;
          }
          if (nl === i || b[nl - 1] !== 0x0d)
            throw new AwsChunkedError('an aws-chunked line does not end with CRLF');
          const line = b.toString('latin1', i, nl - 1);
          i = nl + 1;
          if (this.#state === 'line') this.#chunkLine(line);
          else this.#trailerLine(line);
        }
      }
    }
  }

  #chunkLine(line: string): void {
    const m = CHUNK_LINE.exec(line);
    if (!m)
      throw new AwsChunkedError(
        'an aws-chunked chunk header is not `<hex size>;chunk-signature=<64 hex digits>`',
      );
    this.#sizeText = m[1]!;
    this.#need = Number.parseInt(this.#sizeText, 16);
    if (this.#need > MAX_SIGNED_CHUNK)
      throw new AwsChunkedError(
        `an aws-chunked chunk of ${this.#need} bytes is over the ${MAX_SIGNED_CHUNK} errand re-signs; send smaller chunks`,
      );
    this.#decoded += this.#need;
    if (this.#need > 0) {
      this.#state = 'data';
      return;
    }
    this.#final = true;
    const { decodedLength } = this.#s;
    if (decodedLength !== undefined && decodedLength !== this.#decoded)
      throw new AwsChunkedError(
        `the aws-chunked chunks hold ${this.#decoded} bytes, x-amz-decoded-content-length says ${decodedLength}`,
      );
    if (this.#s.trailer) {
      // The trailer follows the final chunk's line at once, without an empty data CRLF.
      this.#pushChunkLine(this.#sign('PAYLOAD', `${EMPTY_SHA256}\n${EMPTY_SHA256}`));
      this.#state = 'trailer';
    } else this.#state = 'data-end';
  }

  #trailerLine(line: string): void {
    if (TRAILER_SIGNATURE.test(line)) {
      if (this.#trailers.length === 0)
        throw new AwsChunkedError('the aws-chunked trailer has a signature but no header');
      const canonical = this.#trailers.map((t) => `${t}\n`).join('');
      const sig = this.#sign('TRAILER', createHash('sha256').update(canonical).digest('hex'));
      for (const t of this.#trailers) this.push(Buffer.from(`${t}\r\n`, 'latin1'));
      this.push(Buffer.from(`x-amz-trailer-signature:${sig}\r\n`));
      this.#state = 'trailer-end';
      return;
    }
    const m = TRAILER_LINE.exec(line);
    if (!m || m[1] === 'x-amz-trailer-signature')
      throw new AwsChunkedError(
        'an aws-chunked trailer line is not `<lowercase name>:<value>`, or its signature is not 64 hex digits or missing',
      );
    this.#trailers.push(line);
    this.#trailerBytes += line.length + 2;
  }

  #pushChunkLine(signature: string): void {
    this.push(Buffer.from(`${this.#sizeText};chunk-signature=${signature}\r\n`));
  }

  /** A chunk's data and its CRLF have arrived: out it goes, under its new signature. */
  #endChunk(): void {
    this.#pushChunkLine(this.#sign('PAYLOAD', `${EMPTY_SHA256}\n${this.#hash.digest('hex')}`));
    for (const p of this.#parts) this.push(p);
    this.push(CRLF);
    this.#parts = [];
    this.#hash = createHash('sha256');
    this.#state = this.#final ? 'done' : 'line';
  }
}
