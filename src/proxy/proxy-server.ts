import {
  type ClientRequest,
  createServer as createHttpServer,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import {
  Agent as HttpsAgent,
  type RequestOptions as HttpsRequestOptions,
  request as httpsRequest,
} from 'node:https';
import type { Socket } from 'node:net';
import type { Transform } from 'node:stream';
import {
  type ConnectionOptions,
  createSecureContext,
  type SecureContext,
  TLSSocket,
} from 'node:tls';
import { trustedCas } from '../util/trusted-cas.ts';
import { resolveUpstream } from './address-guard.ts';
import {
  ALLOWLIST_CODES,
  ALLOWLIST_FILE,
  type Allowlist,
  decide,
  hostAdmitted,
} from './allowlist.ts';
import type { AwsChunkedError } from './aws-chunked.ts';
import { COPY_SOURCE, copySourceReads } from './aws-copy-source.ts';
import { type ActiveAwsCredential, type AwsRequest, resignAws } from './aws-resign.ts';
import { BodyBudget, overBudget, readBody } from './body-reader.ts';
import type { CertificateAuthority } from './ca.ts';
import { canonicalHost } from './host-name.ts';
import { checkModelRequest, isModelRequest, type ModelApiPolicy } from './model-api-body.ts';
import type { NetworkLogEntry } from './network-log.ts';
import { cleartextCredentialRefusal, isWebSocket, methodOverrides } from './protocol-rules.ts';
import { ReflectionMask } from './reflection-mask.ts';
import { checkResponse, sendBody } from './response-check.ts';
import { type ActiveSurrogate, swapSurrogates } from './surrogates.ts';
import { webSocketMask } from './websocket-mask.ts';

/** What one task's traffic is checked against. The engine itself holds no policy. */
export interface ProxyPolicy {
  taskId: string;
  allowlist: Allowlist;
  surrogates: ActiveSurrogate[];
  /** AWS credentials whose SigV4 signatures are redone with the real key. */
  aws?: ActiveAwsCredential[];
  /** Operator mappings host → address[:port]; the only way to private addresses. */
  resolve: Record<string, string>;
  /**
   * Hosts mapped in `resolve` to which real credentials may go over plain HTTP (port 80);
   * absent or empty: credentials go over TLS only, anywhere.
   */
  cleartextCredentials?: ReadonlySet<string>;
  /** Extra CA (PEM) trusted for upstreams, besides the system's. */
  upstreamCa?: string;
  log: (entry: NetworkLogEntry) => void;
  /** Connections the task may hold open at once (default 256); more are closed at once. */
  maxConnections?: number;
  /**
   * Bytes of request bodies read whole (model API, AWS hashing) the task may have errand
   * hold at once; default MAX_BUFFERED_PER_TASK. Past it a request gets a 503.
   */
  maxBufferedBytes?: number;
  /** The model API, whose request bodies are filtered before they leave; absent: none. */
  modelApi?: ModelApiPolicy;
}

export interface ProxySession {
  /**
   * Serves one connection the sandbox made to `port`: TLS is terminated on 443, plain HTTP
   * is read on 80. The relay hands errand the container's own TCP socket, so no process
   * copies the bytes in between.
   */
  accept(socket: Socket, port: 80 | 443): void;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * The headers a request (or response) is forwarded with: without the hop-by-hop ones and
 * without those its Connection header names, which are hop-by-hop too (RFC 9110 §7.6.1).
 * Whatever is checked is checked on this, so a header the next hop would drop is neither
 * checked nor sent.
 */
function forwardedHeaders(incoming: IncomingHttpHeaders): IncomingHttpHeaders {
  const nominated = new Set(
    String(incoming.connection ?? '')
      .split(',')
      .map((n) => n.trim().toLowerCase()),
  );
  const out: IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries(incoming))
    if (!HOP_BY_HOP.has(k) && !nominated.has(k)) out[k] = v;
  return out;
}

const DEFAULT_MAX_CONNECTIONS = 256;
/**
 * Names no rule admits that a session still gets a certificate for, so that the agent can
 * read the 403 naming the allowlist file; past them such handshakes fail.
 */
const REFUSED_NAMES_CERTIFIED = 32;

/** A name in SNI or Host that is no host name (`canonicalHost`). */
const BAD_HOST = (name: string): Refusal => ({
  status: 400,
  code: 'bad_host',
  message: `"${name.slice(0, 80)}" is not a host name (empty label, or a character other than letters, digits, - and _)`,
});

/** A throw while checking or forwarding: the request is denied, nothing more is sent. */
const PROXY_ERROR = (e: unknown): Refusal => ({
  status: 502,
  code: 'proxy_error',
  message: `errand's proxy failed: ${(e as Error).message}`,
});
const TOO_MANY_CONNECTIONS = (max: number): Refusal => ({
  status: 0,
  code: 'too_many_connections',
  message: `the task holds ${max} open connections, the most errand allows; close some first`,
});

/** The largest AWS body hashed to re-sign a request that does not carry its payload hash. */
const MAX_SIGNED_BODY = 16 * 1024 * 1024;

/** The canonical name in a Host header (its port dropped); undefined: not a host name. */
function hostOf(hostHeader: string): string | undefined {
  const m = /^(\[[^\]]+\]|[^:]+)(?::\d+)?$/.exec(hostHeader.trim());
  return m ? canonicalHost(m[1]!) : undefined;
}

/** The URL as logged: query values dropped, since tokens travel there too. */
function loggedUrl(scheme: string, host: string, target: string): string {
  const q = target.indexOf('?');
  if (q < 0) return `${scheme}://${host}${target}`;
  const keys = target
    .slice(q + 1)
    .split('&')
    .map((kv) => kv.split('=')[0])
    .filter(Boolean);
  return `${scheme}://${host}${target.slice(0, q)}${keys.length ? `?${keys.map((k) => `${k}=…`).join('&')}` : ''}`;
}

/** A request to the checked upstream: the checked address, the real name for TLS. */
function upstreamRequest(
  c: { host: string; tls: boolean; address: string; family: 4 | 6; port: number },
  o: {
    method: string;
    path: string;
    headers: IncomingHttpHeaders;
    /** false: a connection of its own, never pooled. */
    agent?: HttpAgent | HttpsAgent | false;
    secureContext?: SecureContext;
  },
): ClientRequest {
  // tls.connect takes `secureContext`; https.request passes it on, its type omits it.
  const options: HttpsRequestOptions & ConnectionOptions = {
    host: c.address,
    family: c.family,
    port: c.port,
    method: o.method,
    path: o.path,
    headers: o.headers as Record<string, string | string[]>,
    agent: o.agent,
    servername: c.tls ? c.host : undefined,
    secureContext: o.secureContext,
  };
  return (c.tls ? httpsRequest : httpRequest)(options);
}

interface Refusal {
  status: number;
  code: string;
  message: string;
}

/** A refusal written straight to the socket: CONNECT and upgrades have no response object. */
function refuseOnSocket(sock: Socket, r: Refusal): void {
  const body = JSON.stringify({
    error: 'blocked_by_errand',
    code: r.code,
    message: `errand's network sandbox refused this request: ${r.message}`,
  });
  sock.end(
    `HTTP/1.1 ${r.status} ${STATUS_CODES[r.status] ?? 'Refused'}\r\ncontent-type: application/json\r\nx-errand-block: ${r.code}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

function logBlocked(
  policy: ProxyPolicy,
  started: number,
  method: string,
  url: string,
  r: Refusal,
  swapped: string[],
): void {
  policy.log({
    time: new Date(started).toISOString(),
    action: 'blocked',
    method,
    url,
    status: r.status,
    code: r.code,
    swapped,
  });
}

/**
 * Logs a refusal already answered, where a throw would have no caller to go to (an event
 * handler, a TLS callback): the log itself may be what failed, and then the answer is all.
 */
function logAnswered(policy: ProxyPolicy, method: string, url: string, r: Refusal): void {
  try {
    logBlocked(policy, Date.now(), method, url, r, []);
  } catch {
    // The sandbox has its refusal; errand has no other place to report to from here.
  }
}

const schemeOf = (req: IncomingMessage) => (req.socket instanceof TLSSocket ? 'https' : 'http');

/**
 * Why a request re-signed with the real AWS key must not go out because of the object it
 * copies from (`x-amz-copy-source`, a header or a presigned URL's parameter): S3 reads that
 * object with the real key, so the allowlist must admit reading it as a GET, virtual-hosted
 * or path-style. Undefined when there is no copy source or it is admitted.
 */
function copySourceRefusal(
  allowlist: Allowlist,
  host: string,
  headers: IncomingHttpHeaders,
  target: string,
): Refusal | undefined {
  const q = target.indexOf('?');
  const fromQuery =
    q < 0
      ? undefined
      : [...new URLSearchParams(target.slice(q + 1))].find(
          ([k]) => k.toLowerCase() === COPY_SOURCE,
        )?.[1];
  const raw = headers[COPY_SOURCE] ?? fromQuery;
  if (raw === undefined) return undefined;
  const source = Array.isArray(raw) ? raw.join(',') : raw;
  const reads = copySourceReads(host, source);
  const admitted = reads?.some(
    (r) =>
      decide(allowlist, { host: r.host, method: 'GET', rawPath: r.rawPath }).action === 'allow',
  );
  if (admitted) return undefined;
  return {
    status: 403,
    code: 'aws_copy_source_not_allowed',
    message: reads
      ? `the copy source ${source.slice(0, 200)} is read by S3 with the real key, and GET ${reads.map((r) => `https://${r.host}${r.rawPath}`).join(' or ')} is not in ${ALLOWLIST_FILE}. To allow it, change ${ALLOWLIST_FILE} on the default branch by pull request`
      : `errand cannot tell which object the copy source ${source.slice(0, 200)} names (only bucket/key on an amazonaws.com S3 endpoint), and S3 would read it with the real key; copy with a GET and a PUT instead`,
  };
}

/**
 * The host-side proxy: one instance for all tasks, one session per task.
 * TLS is terminated with a certificate from errand's CA for the SNI name; every request is
 * checked by `decide` against the task's allowlist before anything is sent upstream.
 */
export class ProxyServer {
  readonly #ca: CertificateAuthority;

  readonly #upstreamContexts = new Map<string, SecureContext>();

  constructor(opts: { ca: CertificateAuthority }) {
    this.#ca = opts.ca;
  }

  /**
   * The TLS context for upstream connections, one per extra CA: building one parses every
   * trusted CA (a few ms), which each new connection would otherwise repeat.
   */
  #upstreamContext(extraCa: string | undefined): SecureContext {
    const key = extraCa ?? '';
    let ctx = this.#upstreamContexts.get(key);
    if (!ctx) {
      ctx = createSecureContext({ ca: trustedCas(...(extraCa ? [extraCa] : [])) });
      this.#upstreamContexts.set(key, ctx);
    }
    return ctx;
  }

  openSession(given: ProxyPolicy): ProxySession {
    // The operator's names in the one spelling requests are checked in (canonicalHost).
    const policy: ProxyPolicy = {
      ...given,
      resolve: Object.fromEntries(
        Object.entries(given.resolve).flatMap(([h, a]) => {
          const c = canonicalHost(h);
          return c ? [[c, a]] : [];
        }),
      ),
      cleartextCredentials: new Set(
        [...(given.cleartextCredentials ?? [])].flatMap((h) => canonicalHost(h) ?? []),
      ),
    };
    const secureContext = this.#upstreamContext(policy.upstreamCa);
    const agents = {
      https: new HttpsAgent({ keepAlive: true, maxSockets: 64, secureContext }),
      http: new HttpAgent({ keepAlive: true, maxSockets: 64 }),
    };
    const budget = new BodyBudget(policy.maxBufferedBytes);
    const http = createHttpServer(
      { requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 30_000 },
      (req, res) => {
        this.#handle(policy, agents, budget, req, res).catch((e) => {
          req.resume();
          if (res.headersSent) return res.destroy();
          const r = PROXY_ERROR(e);
          this.#refuse(res, r);
          logAnswered(policy, req.method ?? '-', `${schemeOf(req)}://-`, r);
        });
      },
    );
    http.on('connect', (req: IncomingMessage, sock: Socket) => {
      // A CONNECT would open a tunnel the proxy cannot see into: refused.
      const r: Refusal = {
        status: 403,
        code: 'connect_refused',
        message:
          "CONNECT tunnels are not allowed; connect to the host directly, its name already leads to errand's proxy",
      };
      refuseOnSocket(sock, r);
      logBlocked(policy, Date.now(), 'CONNECT', String(req.url), r, []);
    });
    http.on('upgrade', (req: IncomingMessage, sock: Socket, head: Buffer) => {
      this.#upgrade(policy, secureContext, req, sock, head).catch((e) => {
        // Nothing was written yet unless the tunnel was up; then only closing is left.
        if (sock.bytesWritten > 0) return sock.destroy();
        const r = PROXY_ERROR(e);
        refuseOnSocket(sock, r);
        logAnswered(policy, req.method ?? '-', `${schemeOf(req)}://-`, r);
      });
    });
    http.on('clientError', (_e, sock: Socket) => {
      if (sock.writable)
        sock.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    });

    let closed = false;
    // Every connection is a file descriptor in errand's own process: a task opening them
    // without end would starve the other tasks and the channels.
    const max = policy.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    // The sockets live in errand's process, not the relay's: a session's end must close
    // them itself, WebSocket tunnels and unfinished handshakes included.
    const open = new Set<Socket>();
    let refusedSince = 0;
    const refusedNames = new Set<string>();
    return {
      accept: (raw, port) => {
        raw.on('error', () => undefined);
        // A socket handed over by the relay skips http.Server's own setup, Nagle's
        // algorithm off included: with it, a short write after another (a handshake's
        // second flight, a stream's last event) waits for a delayed ACK, 40 ms here.
        raw.setNoDelay(true);
        if (closed) {
          raw.destroy();
          return;
        }
        if (open.size >= max) {
          raw.destroy();
          // One line per burst, not one per refused connection.
          if (Date.now() - refusedSince > 10_000) {
            refusedSince = Date.now();
            logBlocked(
              policy,
              refusedSince,
              '-',
              `${port === 443 ? 'https' : 'http'}://-`,
              TOO_MANY_CONNECTIONS(max),
              [],
            );
          }
          return;
        }
        open.add(raw);
        raw.once('close', () => open.delete(raw));
        this.#accept(policy, http, raw, port, refusedNames);
      },
      close: async () => {
        closed = true;
        http.closeAllConnections();
        for (const raw of open) raw.destroy();
        agents.https.destroy();
        agents.http.destroy();
      },
    };
  }

  /**
   * `refusedNames`: the names no rule admits that this session had a certificate made for,
   * at most REFUSED_NAMES_CERTIFIED of them.
   */
  #accept(
    policy: ProxyPolicy,
    http: Server,
    raw: Socket,
    port: number,
    refusedNames: Set<string>,
  ): void {
    if (port === 80) {
      http.emit('connection', raw);
      return;
    }
    const tls = new TLSSocket(raw, {
      isServer: true,
      // Without SNI: a certificate for no real name, so the request can be read and refused.
      secureContext: this.#ca.noServerNameContext,
      SNICallback: (name, cb) => {
        // Signing a certificate costs milliseconds of CPU and keeps memory: a task naming
        // endless hosts must not have errand sign one for each. Names a rule admits get
        // one (the CA keeps the most recent ones); a few others do too, so the agent can
        // read the refusal that names the file to change; beyond those the handshake fails.
        let refusal: Refusal | undefined;
        const host = canonicalHost(name);
        try {
          if (!host) refusal = BAD_HOST(name);
          else if (!hostAdmitted(policy.allowlist, host)) {
            if (refusedNames.has(host) || refusedNames.size < REFUSED_NAMES_CERTIFIED)
              refusedNames.add(host);
            else
              refusal = {
                status: 403,
                code: 'host_not_allowed',
                message: `${host} is not in ${ALLOWLIST_FILE}`,
              };
          }
        } catch (e) {
          refusal = PROXY_ERROR(e);
        }
        if (refusal) {
          cb(new Error(refusal.message));
          // No request was read: status 0, as for a refused connection.
          logAnswered(policy, '-', `https://${host ?? name}/`, { ...refusal, status: 0 });
          return;
        }
        this.#ca.contextFor(host!).then(
          (ctx) => cb(null, ctx),
          (e: Error) => cb(e),
        );
      },
    });
    tls.on('error', () => raw.destroy());
    http.emit('connection', tls);
  }

  /**
   * Checks a request and returns where to send it and the headers to send, or why not.
   * `upgrade`: the request asks to switch protocols (Node's 'upgrade' event).
   */
  async #check(
    policy: ProxyPolicy,
    req: IncomingMessage,
    upgrade = false,
  ): Promise<
    | {
        ok: true;
        host: string;
        tls: boolean;
        address: string;
        port: number;
        family: 4 | 6;
        mapped: boolean;
        /** What goes upstream: forwarded headers, the Host header set to the canonical name. */
        headers: IncomingHttpHeaders;
      }
    | ({ ok: false; host: string; tls: boolean } & Refusal)
  > {
    const tls = req.socket instanceof TLSSocket;
    const rawSni = tls ? (req.socket as TLSSocket).servername || undefined : undefined;
    // The SNI callback refused every name that is not canonical; checked again all the same.
    const sni = rawSni && canonicalHost(rawSni);
    const rawHost = req.headers.host;
    const headerHost = rawHost === undefined ? undefined : hostOf(rawHost);
    const host = (tls ? sni : headerHost) ?? '';
    const target = req.url ?? '';
    const deny = (r: Refusal) => ({ ok: false as const, host, tls, ...r });
    if (tls && !rawSni)
      return deny({
        status: 403,
        code: 'no_sni',
        message:
          'the TLS connection named no server (SNI); errand needs it to check the destination: connect by host name, not by address',
      });
    if (tls && !sni) return deny(BAD_HOST(rawSni!));
    if (rawHost === undefined)
      return deny({ status: 400, code: 'no_host', message: 'the request has no Host header' });
    if (!headerHost) return deny(BAD_HOST(rawHost));
    if (tls && headerHost !== sni)
      return deny({
        status: 403,
        code: 'host_mismatch',
        message: `the Host header (${headerHost}) does not match the TLS server name (${sni})`,
      });
    if (!target.startsWith('/'))
      return deny({
        status: 400,
        code: 'bad_target',
        message: 'absolute-form or authority-form request targets are not accepted; send a path',
      });
    // `//host/path` reads as an authority to URL parsers, upstream ones included.
    if (target.startsWith('//'))
      return deny({
        status: 400,
        code: 'bad_target',
        message: 'a request target must not start with //; send one slash',
      });
    // A fragment is the client's own (RFC 9112 §3.2: none in a request target); an upstream
    // parsing the target as a URL routes on what comes before `#`, so `/key#.txt` would
    // pass a `*.txt` rule as sent and be served as `/key`.
    if (target.includes('#'))
      return deny({
        status: 400,
        code: 'bad_target',
        message: 'a request target must not carry a #fragment; send %23 for a # in a name',
      });
    const headers = forwardedHeaders(req.headers);
    headers.host = host;
    // The body goes on framed as it came. Unframed, Node's client sends the body of a GET,
    // DELETE or OPTIONS as is, and the upstream reads it as a second request nobody
    // checked. Content-Length is framing, which no Connection header can name away.
    if (req.headers['content-length'] !== undefined)
      headers['content-length'] = req.headers['content-length'];
    else if (req.headers['transfer-encoding'] !== undefined)
      headers['transfer-encoding'] = req.headers['transfer-encoding'];
    const decision = decide(policy.allowlist, {
      host,
      method: req.method ?? 'GET',
      rawPath: target.split('?')[0]!,
      methodOverrides: methodOverrides(headers),
      upgrade: upgrade
        ? {
            protocol: String(req.headers.upgrade ?? ''),
            websocketKey: Boolean(req.headers['sec-websocket-key']),
            websocketVersion: Boolean(req.headers['sec-websocket-version']),
          }
        : undefined,
    });
    if (decision.action === 'deny') {
      return deny({
        status: 403,
        code: decision.code,
        message: ALLOWLIST_CODES.has(decision.code)
          ? `${decision.reason}. To allow it, change ${ALLOWLIST_FILE} on the default branch by pull request.`
          : decision.reason,
      });
    }
    const r = await resolveUpstream(host, policy.resolve);
    if (!r.ok) return deny({ status: 403, code: 'upstream_refused', message: r.reason });
    return {
      ok: true,
      host,
      tls,
      address: r.address,
      family: r.family,
      port: r.port ?? (tls ? 443 : 80),
      mapped: r.mapped,
      headers,
    };
  }

  /** Why a request carrying `swapped` must not go out over this connection, if it must not. */
  #cleartext(
    policy: ProxyPolicy,
    c: { tls: boolean; host: string; mapped: boolean },
    swapped: string[],
  ): Refusal | undefined {
    const why = cleartextCredentialRefusal({
      ...c,
      swapped,
      cleartextHosts: policy.cleartextCredentials ?? new Set(),
    });
    return why ? { status: 403, code: 'cleartext_credential', message: why } : undefined;
  }

  #refuse(res: ServerResponse, r: Refusal, extra: Record<string, string> = {}): void {
    const body = JSON.stringify({
      error: 'blocked_by_errand',
      code: r.code,
      message: `errand's network sandbox refused this request: ${r.message}`,
      ...extra,
    });
    res.writeHead(r.status, {
      'content-type': 'application/json',
      'x-errand-block': r.code,
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  }

  async #handle(
    policy: ProxyPolicy,
    agents: { https: HttpsAgent; http: HttpAgent },
    budget: BodyBudget,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const started = Date.now();
    // A body read whole counts against the task's budget until its exchange is over.
    const readWhole = (max: number) => {
      const r = readBody(req, max, budget);
      res.once('close', r.release);
      return r.read;
    };
    const c = await this.#check(policy, req);
    const url = loggedUrl(c.tls ? 'https' : 'http', c.host || '-', req.url ?? '');
    const method = req.method ?? 'GET';
    const block = (r: Refusal, swapped: string[]) => {
      this.#refuse(res, r, { method, url });
      logBlocked(policy, started, method, url, r, swapped);
    };
    if (!c.ok) {
      req.resume();
      block(c, []);
      return;
    }
    const headers = c.headers;
    const swapped = swapSurrogates(c.host, headers, policy.surrogates);
    // Checked before anything else is done with the request: a real credential never goes
    // out unencrypted, and an AWS request is not even re-signed for it.
    const cleartext = this.#cleartext(policy, c, swapped);
    if (cleartext) {
      req.resume();
      block(cleartext, []);
      return;
    }
    let target = req.url ?? '/';
    let body: Buffer | undefined;
    let removed: string[] | undefined;
    // The model provider runs some tools itself, outside this proxy: the body of a request
    // to its API is read whole and filtered, and only the filter's result is sent.
    if (policy.modelApi && isModelRequest(policy.modelApi, c.host, target)) {
      const step = await checkModelRequest(policy.modelApi, req, headers, readWhole);
      if (step.kind === 'refuse') {
        res.setHeader('connection', 'close');
        block(step, swapped);
        return;
      }
      body = step.body;
      if (step.removed.length) removed = step.removed;
    }
    let resignChunks: Transform | undefined;
    if (policy.aws?.length) {
      const signing: AwsRequest = { method, host: c.host, target, headers, body };
      // The one cleartext rule decides for AWS too: asked about a credential of any name,
      // it says whether one may go out on this connection at all.
      if (this.#cleartext(policy, c, ['AWS'])) {
        signing.cleartext = {
          code: 'cleartext_credential',
          reason: (name) => this.#cleartext(policy, c, [name])!.message,
        };
      }
      let r = await resignAws(signing, policy.aws);
      if (r.kind === 'needs_body') {
        const got = await readWhole(MAX_SIGNED_BODY);
        if (!got.ok) {
          res.setHeader('connection', 'close');
          block(
            got.why === 'over_budget'
              ? overBudget(got.budget)
              : {
                  status: 413,
                  code: 'aws_body_too_large',
                  message: `an AWS request body over ${MAX_SIGNED_BODY} bytes without x-amz-content-sha256 cannot be re-signed; send the payload hash header`,
                },
            swapped,
          );
          return;
        }
        body = got.body;
        signing.body = body;
        r = await resignAws(signing, policy.aws);
      }
      if (r.kind === 'refused') {
        req.resume();
        block({ status: 403, code: r.code, message: r.reason }, swapped);
        return;
      }
      if (r.kind === 'resigned') {
        const copy = copySourceRefusal(policy.allowlist, c.host, headers, signing.target);
        if (copy) {
          req.resume();
          block(copy, swapped);
          return;
        }
        swapped.push(r.name);
        resignChunks = r.body;
      }
      target = signing.target;
    }
    const mask = ReflectionMask.of(policy);
    // What comes back from a host holding a real value is read, so it must be readable.
    if (mask.checksBodiesOf(c.host)) headers['accept-encoding'] = 'identity';
    const up = upstreamRequest(c, {
      method,
      path: target,
      headers,
      agent: c.tls ? agents.https : agents.http,
    });
    up.on('response', (upRes) => {
      const out = checkResponse(
        mask,
        c.host,
        method,
        {
          statusCode: upRes.statusCode ?? 502,
          statusMessage: upRes.statusMessage,
          headers: upRes.headers,
        },
        (k) => !HOP_BY_HOP.has(k),
      );
      if (!out.ok) {
        upRes.destroy();
        block(out, swapped);
        return;
      }
      res.writeHead(upRes.statusCode ?? 502, out.statusMessage, out.headers);
      sendBody(upRes, res, out.body);
      policy.log({
        time: new Date(started).toISOString(),
        action: 'allowed',
        method,
        url,
        status: upRes.statusCode ?? 0,
        swapped,
        ...(removed && { removed }),
      });
    });
    up.on('error', (e) => {
      // An upload cut off for its framing was answered and logged where it was cut.
      if (resignChunks?.errored) return;
      if (!res.headersSent) {
        this.#refuse(
          res,
          { status: 502, code: 'upstream_failed', message: `${c.host}: ${e.message}` },
          { method, url },
        );
        policy.log({
          time: new Date(started).toISOString(),
          action: 'allowed',
          method,
          url,
          status: 502,
          code: 'upstream_failed',
          swapped,
          ...(removed && { removed }),
        });
      } else {
        res.destroy();
      }
    });
    req.on('aborted', () => up.destroy());
    if (body) up.end(body);
    else if (resignChunks) {
      // Framing errand cannot parse cuts the upload off: the upstream gets a broken
      // request, never one signed over bytes errand did not read.
      resignChunks.once('error', (e) => {
        req.unpipe(resignChunks);
        req.resume();
        const r = {
          status: 400,
          code: (e as AwsChunkedError).code ?? 'proxy_error',
          message: e.message,
        };
        if (res.headersSent) {
          logBlocked(policy, started, method, url, r, swapped);
          res.destroy();
        } else block(r, swapped);
        up.destroy();
      });
      req.pipe(resignChunks).pipe(up);
    } else req.pipe(up);
  }

  async #upgrade(
    policy: ProxyPolicy,
    secureContext: SecureContext,
    req: IncomingMessage,
    sock: Socket,
    head: Buffer,
  ): Promise<void> {
    const c = await this.#check(policy, req, true);
    const method = req.method ?? 'GET';
    const url = loggedUrl(c.tls ? 'wss' : 'ws', c.host || '-', req.url ?? '');
    if (!c.ok) {
      refuseOnSocket(sock, c);
      logBlocked(policy, Date.now(), method, url, c, []);
      return;
    }
    // Once the upstream switches protocols, the bytes after the head go on as they are:
    // a model API body would pass its filter unread.
    if (policy.modelApi && isModelRequest(policy.modelApi, c.host, req.url ?? '/')) {
      const r: Refusal = {
        status: 400,
        code: 'model_request_invalid',
        message:
          'a request to the model API cannot ask for a protocol upgrade: errand checks its body, so send it as a plain request',
      };
      refuseOnSocket(sock, r);
      logBlocked(policy, Date.now(), method, url, r, []);
      return;
    }
    // The check admitted a WebSocket handshake and nothing else: that is what goes out.
    const headers: IncomingHttpHeaders = {
      ...c.headers,
      connection: 'Upgrade',
      upgrade: 'websocket',
    };
    // The handshake goes up without a body: what follows it is the WebSocket's, relayed after the 101.
    delete headers['content-length'];
    delete headers['transfer-encoding'];
    const swapped = swapSurrogates(c.host, headers, policy.surrogates);
    const cleartext = this.#cleartext(policy, c, swapped);
    if (cleartext) {
      refuseOnSocket(sock, cleartext);
      logBlocked(policy, Date.now(), method, url, cleartext, []);
      return;
    }
    const mask = ReflectionMask.of(policy);
    const checked = mask.checksBodiesOf(c.host);
    // permessage-deflate would hide the frames' payload from the mask.
    if (checked) delete headers['sec-websocket-extensions'];
    // A connection of its own: Node's global agent would pool one the upstream kept open
    // after refusing the handshake, for any session's next one, whatever CA that session
    // trusts (the pool does not tell secure contexts apart).
    const up = upstreamRequest(c, {
      method,
      path: req.url ?? '/',
      headers,
      agent: false,
      secureContext,
    });
    up.on('upgrade', (upRes, upSock, upHead) => {
      // An upstream switching to anything else would leave a tunnel in a protocol the
      // sandbox did not ask for and the proxy does not read.
      if (!isWebSocket(upRes.headers.upgrade)) {
        upSock.destroy();
        const r: Refusal = {
          status: 502,
          code: 'upstream_bad_upgrade',
          message: `${c.host} switched to "${String(upRes.headers.upgrade ?? '').slice(0, 40)}" instead of websocket; the connection is closed`,
        };
        refuseOnSocket(sock, r);
        // The request did go out (as for upstream_failed): logged as allowed, with the code.
        policy.log({
          time: new Date().toISOString(),
          action: 'allowed',
          method,
          url,
          status: r.status,
          code: r.code,
          swapped,
        });
        return;
      }
      let head101 = `HTTP/1.1 ${upRes.statusCode} ${mask.text(upRes.statusMessage ?? '')}\r\n`;
      for (let i = 0; i < upRes.rawHeaders.length; i += 2) {
        const name = upRes.rawHeaders[i]!;
        if (checked && name.toLowerCase() === 'sec-websocket-extensions') continue;
        head101 += `${mask.text(name)}: ${mask.text(upRes.rawHeaders[i + 1]!)}\r\n`;
      }
      sock.write(`${head101}\r\n`);
      // From a host holding a real value, every byte back is masked; a frame the mask
      // cannot read closes both sides.
      const back = checked
        ? /^websocket$/i.test(upRes.headers.upgrade ?? '')
          ? webSocketMask(mask)
          : mask.transform()
        : undefined;
      back?.on('error', () => {
        sock.destroy();
        upSock.destroy();
      });
      if (upHead.length) (back ?? sock).write(upHead);
      if (head.length) upSock.write(head);
      if (back) upSock.pipe(back).pipe(sock);
      else upSock.pipe(sock);
      sock.pipe(upSock);
      // Either side gone, abruptly or not, ends the other: pipe() alone would leave the
      // upstream connection open after the sandbox's socket closed.
      upSock.on('close', () => sock.destroy());
      sock.on('close', () => upSock.destroy());
      upSock.on('error', () => sock.destroy());
      sock.on('error', () => upSock.destroy());
      policy.log({
        time: new Date().toISOString(),
        action: 'allowed',
        method,
        url,
        status: 101,
        swapped,
      });
    });
    up.on('response', (upRes) => {
      sock.end(
        `HTTP/1.1 ${upRes.statusCode} ${mask.text(upRes.statusMessage ?? '')}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`,
      );
      upRes.resume();
    });
    up.on('error', () => sock.destroy());
    up.end();
  }
}
