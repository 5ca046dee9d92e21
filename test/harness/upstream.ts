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
import type { ProxySession } from '../../src/proxy/index.ts';
import { CertificateAuthority } from '../../src/proxy/index.ts';

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
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: '',
        bytes: Buffer.alloc(0),
        servername: servernameOf(req),
      });
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
        const n = Number(req.url.slice(5));
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
        const chunk = Buffer.alloc(64 * 1024, 97);
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
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, host: req.headers.host, path: req.url }));
    });
  };
  const ctx = await Promise.all(names.map((n) => ca.contextFor(n)));
  const https = createHttpsServer(
    { SNICallback: (name, cb) => cb(null, ctx[Math.max(0, names.indexOf(name))]) },
    handler,
  );
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
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
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
      let body = '';
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
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
