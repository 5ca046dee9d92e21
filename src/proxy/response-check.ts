import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Readable, Transform } from 'node:stream';
import {
  createBrotliDecompress,
  createGunzip,
  createInflate,
  createZstdDecompress,
} from 'node:zlib';
import type { ReflectionMask } from './reflection-mask.ts';

/** Content codings the proxy can undo to check a body; any other is refused. */
const DECODERS: Record<string, () => Transform> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
  zstd: createZstdDecompress,
};

export type CheckedResponse =
  | {
      ok: true;
      statusMessage: string | undefined;
      headers: Record<string, string | string[]>;
      /** How the body is checked; undefined: it passes untouched. */
      body?: { mask: ReflectionMask; decoder?: Transform };
    }
  | { ok: false; status: number; code: string; message: string };

/**
 * What of an upstream response may go back into the sandbox. Every header (Location,
 * Set-Cookie, WWW-Authenticate, custom ones) and the status text of every response have
 * each real value replaced by its surrogate. Bodies are checked from the hosts that
 * received a real value; the proxy asked those for no compression, and one that compresses
 * anyway is decompressed first (the sandbox gets the body uncompressed, without length).
 * Every replacement keeps the length, so Content-Length stays right.
 */
export function checkResponse(
  mask: ReflectionMask,
  host: string,
  method: string,
  upstream: {
    statusCode: number;
    statusMessage: string | undefined;
    headers: IncomingHttpHeaders;
  },
  pass: (name: string) => boolean,
): CheckedResponse {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(upstream.headers)) {
    if (v === undefined || !pass(k)) continue;
    headers[mask.text(k)] = Array.isArray(v) ? v.map((x) => mask.text(x)) : mask.text(v);
  }
  const statusMessage =
    upstream.statusMessage === undefined ? undefined : mask.text(upstream.statusMessage);
  const status = upstream.statusCode;
  const bodiless = method === 'HEAD' || status === 204 || status === 304 || status < 200;
  if (bodiless || !mask.checksBodiesOf(host)) return { ok: true, statusMessage, headers };
  // Node undoes only chunked; any other transfer coding (`gzip, chunked`) would reach the
  // sandbox still coded, and unread, once the hop-by-hop header is dropped.
  const transfer = String(upstream.headers['transfer-encoding'] ?? 'chunked')
    .trim()
    .toLowerCase();
  if (transfer !== 'chunked')
    return {
      ok: false,
      status: 502,
      code: 'response_encoding_unsupported',
      message: `${host} answered with Transfer-Encoding "${transfer.slice(0, 40)}", which errand cannot decode to check that no real credential comes back`,
    };
  // A byte range of an echo carries a piece of the real value, and pieces are not
  // recognisable: two ranges that each miss one end of the value give it whole.
  if (status === 206 && mask.refusesPartsFrom(host))
    return {
      ok: false,
      status: 502,
      code: 'response_partial_refused',
      message: `${host} answered with a part of a response (206); errand passes on only whole responses from a host a secret is scoped to, since a part could carry a piece of the real credential it cannot recognise. Download without a Range header`,
    };
  const coding = String(headers['content-encoding'] ?? 'identity')
    .trim()
    .toLowerCase();
  if (coding === 'identity' || coding === '')
    return { ok: true, statusMessage, headers, body: { mask } };
  const decoder = DECODERS[coding];
  if (!decoder)
    return {
      ok: false,
      status: 502,
      code: 'response_encoding_unsupported',
      message: `${host} answered with Content-Encoding "${coding}", which errand cannot decode to check that no real credential comes back; errand asked it for an uncompressed response`,
    };
  delete headers['content-encoding'];
  delete headers['content-length'];
  return { ok: true, statusMessage, headers, body: { mask, decoder: decoder() } };
}

/**
 * Sends the upstream's body on to the sandbox as `checkResponse` decided. A masked body is
 * relayed by listeners rather than through a Transform: a Transform's end reaches the
 * response a few ticks after its last data, so the end of a chunked response went out in
 * a TLS record of its own, a second wake-up of the client for every small response.
 */
export function sendBody(
  upstream: IncomingMessage,
  res: ServerResponse,
  body: { mask: ReflectionMask; decoder?: Transform } | undefined,
): void {
  if (!body) {
    upstream.pipe(res);
    return;
  }
  const from: Readable = body.decoder ? upstream.pipe(body.decoder) : upstream;
  // A body that cannot be decoded is not passed on: the sandbox sees it cut off.
  body.decoder?.on('error', () => {
    res.destroy();
    upstream.destroy();
  });
  const m = body.mask.stream();
  from.on('data', (chunk: Buffer) => {
    const out = m.push(chunk);
    if (out.length && !res.write(out)) from.pause();
  });
  res.on('drain', () => from.resume());
  from.on('end', () => res.end(m.end()));
  // Either side gone before the end ends the other.
  res.on('close', () => {
    if (!upstream.complete) upstream.destroy();
  });
  upstream.on('close', () => {
    if (!upstream.complete) res.destroy();
  });
}
