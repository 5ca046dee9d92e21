import { createHash, randomBytes } from 'node:crypto';
import {
  createServer as createHttpServer,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, connect, createServer as createNetServer, type Socket } from 'node:net';
import { type ConnectionOptions, TLSSocket, connect as tlsConnect } from 'node:tls';
import { gzipSync } from 'node:zlib';
import type { ProxySession } from '../../src/proxy/index.ts';
import { CertificateAuthority } from '../../src/proxy/index.ts';

const RANDOM_BLOCK = randomBytes(64 * 1024);

export interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** The body's bytes as received (`body` is them read as UTF-8). */
  bytes: Buffer;
  /** The TLS server name the proxy asked for; undefined over plain HTTP. */
  servername?: string;
}

function servernameOf(req: IncomingMessage): string | undefined {
  return req.socket instanceof TLSSocket ? (req.socket.servername as string) : undefined;
}

/** What is recorded of a request whose body the upstream does not read (git, upgrades). */
function headOnly(req: IncomingMessage): Seen {
  return {
    method: req.method ?? '',
    url: req.url ?? '',
    headers: req.headers,
    body: '',
    bytes: Buffer.alloc(0),
    servername: servernameOf(req),
  };
}

/**
 * A loopback HTTPS (and HTTP) server standing in for an internet host. Its certificate
 * comes from a CA of its own, which tests hand to the proxy as the upstream CA. It records
 * every request, so tests can assert what reached it and what did not.
 */
export async function startUpstream(
  dir: string,
  names: string[],
  opts: { git?: (req: IncomingMessage, res: ServerResponse) => void } = {},
): Promise<{
  seen: Seen[];
  /** Requests whose body was cut off before its end, with the bytes that did arrive. */
  aborted: Seen[];
  /** Requests whose head has arrived and whose body has not ended yet. */
  inFlight(): number;
  httpsPort: number;
  httpPort: number;
  caPem: string;
  close(): Promise<void>;
}> {
  const ca = await CertificateAuthority.loadOrCreate(dir);
  const seen: Seen[] = [];
  const aborted: Seen[] = [];
  let inFlight = 0;
  const handler = (
    req: import('node:http').IncomingMessage,
    res: import('node:http').ServerResponse,
  ) => {
    if (opts.git && req.url?.includes('.git/')) {
      seen.push(headOnly(req));
      opts.git(req, res);
      return;
    }
    const chunks: Buffer[] = [];
    const record = (): Seen => {
      const bytes = Buffer.concat(chunks);
      return {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: bytes.toString(),
        bytes,
        servername: servernameOf(req),
      };
    };
    inFlight++;
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('close', () => {
      if (req.complete) return;
      inFlight--;
      aborted.push(record());
    });
    req.on('end', () => {
      inFlight--;
      seen.push(record());
      if (req.url?.startsWith('/big/')) {
        const url = new URL(req.url, 'https://upstream.invalid');
        const n = Number(url.pathname.slice(5));
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
        // `?random=1`: binary-like bytes (a 64 KiB random block, repeated) instead of text-like.
        const chunk = url.searchParams.get('random') ? RANDOM_BLOCK : Buffer.alloc(64 * 1024, 97);
        let left = n;
        const pump = () => {
          while (left > 0) {
            const part = chunk.subarray(0, Math.min(chunk.length, left));
            left -= part.length;
            if (!res.write(part)) return res.once('drain', pump);
          }
          res.end();
        };
        pump();
        return;
      }
      if (misbehave(req, res)) return;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, host: req.headers.host, path: req.url }));
    });
  };
  const ctx = await Promise.all(names.map((n) => ca.contextFor(n)));
  const https = createHttpsServer(
    { SNICallback: (name, cb) => cb(null, ctx[Math.max(0, names.indexOf(name))]) },
    handler,
  );
  https.on('upgrade', (req: IncomingMessage, sock: Socket) => {
    seen.push(headOnly(req));
    webSocketEcho(req, sock);
  });
  const http = createHttpServer(handler);
  await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return {
    seen,
    aborted,
    inFlight: () => inFlight,
    caPem: ca.certPem,
    httpsPort: (https.address() as AddressInfo).port,
    httpPort: (http.address() as AddressInfo).port,
    close: async () => {
      https.closeAllConnections();
      http.closeAllConnections();
      await Promise.all([new Promise((r) => https.close(r)), new Promise((r) => http.close(r))]);
    },
  };
}

/** Where `secret` sits in `text`, to split a write in the middle of it; else the middle. */
function middleOf(text: Buffer, secret: string | undefined): number {
  const at = secret ? text.indexOf(secret) : -1;
  return at >= 0 ? at + Math.floor(secret!.length / 2) : Math.floor(text.length / 2);
}

/** The credential of an Authorization header: what follows the scheme. */
function credentialOf(req: IncomingMessage): string | undefined {
  return req.headers.authorization?.split(' ')[1];
}

/**
 * Routes of an upstream that hands back what it received, the way real ones do by
 * accident: httpbin-style echoes, error pages, redirects, cookies.
 * - `…/echo` returns the request (method, url, headers) as JSON and echoes the
 *   Authorization header in `x-echo-authorization`, Set-Cookie and WWW-Authenticate.
 *   `?split=1` writes the body in two parts split inside the credential, a pause between;
 *   `?gzip=1` compresses it whatever the request accepted; `?encoding=X` labels it with
 *   Content-Encoding X; `?te=gzip` sends it gzip-compressed as `Transfer-Encoding: gzip,
 *   chunked`; `?ranges=1` answers a `Range: bytes=A-B` with that part (206), as a
 *   caching front serves ranges of any response.
 * - `…/redirect?to=URL` answers 307 to URL, with `{auth}` replaced by the credential.
 * - `…/random/N` sends N pseudo-random bytes (with `?plant=TEXT` written every 64 KiB)
 *   and their SHA-256 in `x-body-sha256`.
 */
function misbehave(req: IncomingMessage, res: ServerResponse): boolean {
  const url = new URL(req.url ?? '/', 'https://upstream.invalid');
  const auth = req.headers.authorization ?? '';
  if (url.pathname.endsWith('/echo')) {
    let body = Buffer.from(
      JSON.stringify({ method: req.method, url: req.url, headers: req.headers }, null, 1),
    );
    const headers: Record<string, string | number> = {
      'content-type': 'application/json',
      'x-echo-authorization': auth,
      'set-cookie': `session=${credentialOf(req) ?? ''}; Path=/`,
      'www-authenticate': `Bearer error="invalid_token", token="${credentialOf(req) ?? ''}"`,
    };
    if (url.searchParams.get('gzip')) {
      body = gzipSync(body);
      headers['content-encoding'] = 'gzip';
    }
    const encoding = url.searchParams.get('encoding');
    if (encoding) headers['content-encoding'] = encoding;
    if (url.searchParams.get('te') === 'gzip') {
      res.writeHead(200, { ...headers, 'transfer-encoding': 'gzip, chunked' });
      res.end(gzipSync(body));
      return true;
    }
    const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (url.searchParams.get('ranges') && range) {
      const [from, to] = [Number(range[1]), Math.min(Number(range[2]), body.length - 1)];
      res.writeHead(206, {
        ...headers,
        'content-range': `bytes ${from}-${to}/${body.length}`,
        'content-length': to - from + 1,
      });
      res.end(body.subarray(from, to + 1));
      return true;
    }
    if (!url.searchParams.get('split')) {
      res.writeHead(200, { ...headers, 'content-length': body.length });
      res.end(body);
      return true;
    }
    res.writeHead(200, headers);
    const cut = middleOf(body, credentialOf(req));
    res.write(body.subarray(0, cut));
    setTimeout(() => res.end(body.subarray(cut)), 50);
    return true;
  }
  if (url.pathname.endsWith('/redirect')) {
    const to = (url.searchParams.get('to') ?? '/').replaceAll('{auth}', credentialOf(req) ?? '');
    res.writeHead(307, { location: to, 'content-length': 0 });
    res.end();
    return true;
  }
  const random = /\/random\/(\d+)$/.exec(url.pathname);
  if (random) {
    const body = Buffer.alloc(Number(random[1]));
    let x = 0x9e3779b9;
    for (let i = 0; i < body.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      body[i] = x & 0xff;
    }
    const plant = url.searchParams.get('plant');
    if (plant) for (let i = 0; i < body.length; i += 65536) body.write(plant, i);
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': body.length,
      'x-body-sha256': createHash('sha256').update(body).digest('hex'),
    });
    res.end(body);
    return true;
  }
  return false;
}

/** One server → client WebSocket frame (FIN set); `mask` and `rsv1` make it one the proxy cannot read. */
export function webSocketFrame(
  payload: Buffer,
  o: { opcode?: number; mask?: boolean; rsv1?: boolean } = {},
): Buffer {
  const len = payload.length;
  const size = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const head = Buffer.alloc(size + (o.mask ? 4 : 0));
  head[0] = 0x80 | (o.rsv1 ? 0x40 : 0) | (o.opcode ?? 1);
  head[1] = (o.mask ? 0x80 : 0) | (len < 126 ? len : len < 65536 ? 126 : 127);
  if (size === 4) head.writeUInt16BE(len, 2);
  if (size === 10) head.writeBigUInt64BE(BigInt(len), 2);
  if (!o.mask) return Buffer.concat([head, payload]);
  const key = Buffer.from([1, 2, 3, 4]);
  key.copy(head, size);
  return Buffer.concat([head, payload.map((b, i) => b ^ key[i % 4]!)]);
}

/**
 * A WebSocket server that greets with what it received: a 101 echoing the Authorization
 * header in `x-echo-authorization`, then a text frame with the request's headers as JSON.
 * `?split=1` writes that frame in two parts split inside the credential, a pause between;
 * `?then=TEXT` sends a second frame with TEXT; `?unreadable=masked|rsv1` sends the
 * greeting in a frame the proxy cannot read.
 */
function webSocketEcho(req: IncomingMessage, sock: Socket): void {
  const url = new URL(req.url ?? '/', 'https://upstream.invalid');
  const accept = createHash('sha1')
    .update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
    .digest('base64');
  sock.on('error', () => undefined);
  sock.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nx-echo-authorization: ${req.headers.authorization ?? ''}\r\n\r\n`,
  );
  const unreadable = url.searchParams.get('unreadable');
  const greeting = webSocketFrame(Buffer.from(JSON.stringify({ headers: req.headers })), {
    mask: unreadable === 'masked',
    rsv1: unreadable === 'rsv1',
  });
  const then = url.searchParams.get('then');
  const rest = then ? webSocketFrame(Buffer.from(then)) : Buffer.alloc(0);
  if (!url.searchParams.get('split')) {
    sock.write(Buffer.concat([greeting, rest]));
    return;
  }
  const cut = middleOf(greeting, credentialOf(req));
  sock.write(greeting.subarray(0, cut));
  setTimeout(() => sock.write(Buffer.concat([greeting.subarray(cut), rest])), 50);
}

/**
 * A connection into a proxy session the way the sandbox relay makes one: the proxy gets
 * the server side of a fresh loopback TCP connection, the caller the client side.
 */
export async function connectToSession(session: ProxySession, port: 80 | 443): Promise<Socket> {
  const server = createNetServer((s) => session.accept(s, port));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await new Promise((r) => server.once('connection', r));
  server.close();
  return client;
}

/** Sends one request into a proxy session the way the sandbox relay would. */
export async function viaProxy(
  session: ProxySession,
  o: {
    tls?: boolean;
    servername?: string;
    ca: string;
    host: string;
    method?: string;
    path: string;
    headers?: Record<string, string | string[]>;
    body?: string | Buffer;
  },
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string; bytes: Buffer }> {
  const tls = o.tls ?? true;
  const raw = await connectToSession(session, tls ? 443 : 80);
  return new Promise((resolve, reject) => {
    const socket = tls
      ? tlsConnect({ socket: raw, servername: o.servername ?? o.host, ca: o.ca })
      : raw;
    // An agent whose only connection is the socket made above (TLS already set up).
    const agent = new HttpAgent();
    agent.createConnection = () => socket as never;
    const req = httpRequest({
      agent,
      method: o.method ?? 'GET',
      path: o.path,
      headers: { host: o.host, ...o.headers },
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('error', reject);
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const bytes = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: bytes.toString('utf8'),
          bytes,
        });
      });
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

/**
 * Writes `text` as is into a new connection to a proxy session (TLS on 443, with
 * `tls.servername`) and returns all the proxy answered until it closed the connection, or
 * the handshake error. For what an HTTP client would not send: h2c upgrades, HTTP/1.0
 * without Host, absolute-form targets. Send `Connection: close` where the proxy would
 * otherwise keep the connection open.
 */
export async function rawExchange(
  session: ProxySession,
  port: 80 | 443,
  text: string,
  tls: Omit<ConnectionOptions, 'socket'> = {},
): Promise<{ answer: string; error?: Error }> {
  const raw = await connectToSession(session, port);
  const socket = port === 443 ? tlsConnect({ ...tls, socket: raw }) : raw;
  return new Promise((resolve) => {
    let answer = '';
    socket.on('data', (c) => {
      answer += c;
    });
    socket.on('error', (error) => {
      socket.destroy();
      resolve({ answer, error });
    });
    socket.on('close', () => resolve({ answer }));
    if (port === 443) socket.once('secureConnect', () => socket.write(text));
    else socket.write(text);
  });
}
