import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import {
  type ActiveSurrogate,
  CertificateAuthority,
  type NetworkLogEntry,
  ProxyServer,
  type ProxySession,
  parseAllowlist,
  surrogatesFor,
} from '../../src/proxy/index.ts';
import { eventually } from '../harness/gateway-fixture.ts';
import { connectToSession, rawExchange } from '../harness/upstream.ts';

let dir: string;
let ca: CertificateAuthority;
let session: ProxySession;
let upstreamPort: number;
let plainPort: number;
let upgrades = 0;
let requests = 0;
let upstreamClosed = 0;
/** The headers of the last upgrade request the upstream received. */
let lastUpgrade: IncomingHttpHeaders = {};
let close: () => void;
let upstreamCaPem: string;
let wsContext: import('node:tls').SecureContext;
const REAL_TOKEN = 'ghp_RealToken0123456789abcdefghijABCDEFGH';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'errand-ws-'));
  ca = await CertificateAuthority.loadOrCreate(join(dir, 'ca'));
  const upstreamCa = await CertificateAuthority.loadOrCreate(join(dir, 'up-ca'));
  const ctx = await upstreamCa.contextFor('ws.test.example');
  wsContext = ctx;
  // An echo server speaking just enough of the upgrade handshake; on /switch-to-h2c it
  // misbehaves and switches to another protocol than the one asked for.
  const onUpgrade = (req: import('node:http').IncomingMessage, sock: Socket) => {
    upgrades++;
    lastUpgrade = req.headers;
    sock.on('close', () => upstreamClosed++);
    const protocol = req.url === '/switch-to-h2c' ? 'h2c' : 'websocket';
    sock.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${protocol}\r\nConnection: Upgrade\r\n\r\n`,
    );
    sock.pipe(sock);
  };
  const onRequest = (_req: unknown, res: import('node:http').ServerResponse) => {
    requests++;
    res.end();
  };
  const server = createServer({ SNICallback: (_n, cb) => cb(null, ctx) }, onRequest);
  const plain = createHttpServer(onRequest);
  server.on('upgrade', onUpgrade);
  plain.on('upgrade', onUpgrade);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  upstreamPort = (server.address() as AddressInfo).port;
  plainPort = (plain.address() as AddressInfo).port;
  close = () => {
    for (const s of [server, plain]) {
      s.closeAllConnections();
      s.close();
    }
  };
  upstreamCaPem = upstreamCa.certPem;
  session = openWsSession();
});
after(async () => {
  await session.close();
  close();
  rmSync(dir, { recursive: true, force: true });
});

function openWsSession(
  o: { surrogates?: ActiveSurrogate[]; plain?: boolean; log?: NetworkLogEntry[] } = {},
): ProxySession {
  const allow = parseAllowlist('allow:\n  - host: ws.test.example\n');
  assert.ok(allow.ok);
  const port = o.plain ? plainPort : upstreamPort;
  return new ProxyServer({ ca }).openSession({
    taskId: 't_ws',
    allowlist: allow.allowlist,
    surrogates: o.surrogates ?? [],
    resolve: {
      'ws.test.example': `127.0.0.1:${port}`,
      'blocked.test.example': `127.0.0.1:${port}`,
    },
    upstreamCa: upstreamCaPem,
    log: (e) => o.log?.push(e),
  });
}

/** A WebSocket handshake; `o` changes its parts to make the ones that must be refused. */
const UPGRADE = (
  host: string,
  o: { method?: string; path?: string; upgrade?: string; connection?: string; extra?: string } = {},
) =>
  `${o.method ?? 'GET'} ${o.path ?? '/socket'} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: ${o.upgrade ?? 'websocket'}\r\nConnection: ${o.connection ?? 'Upgrade'}\r\n${o.extra ?? 'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'}\r\n`;

/** Sends a handshake (TLS on 443) and, once switched, a line through the tunnel. */
async function upgrade(
  host: string,
  o: { text?: string; on?: ProxySession; port?: 80 | 443 } = {},
): Promise<{ head: string; echo: string }> {
  const port = o.port ?? 443;
  const raw = await connectToSession(o.on ?? session, port);
  return new Promise((resolve, reject) => {
    const tls =
      port === 443
        ? tlsConnect({
            socket: raw,
            servername: host,
            ca: ca.certPem,
          })
        : raw;
    let buf = '';
    let head = '';
    tls.on('data', (c) => {
      buf += c;
      if (!head) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        if (!head.startsWith('HTTP/1.1 101')) return resolve({ head, echo: '' });
        tls.write('ping through the tunnel');
      }
      if (buf.length >= 'ping through the tunnel'.length) {
        resolve({ head, echo: buf });
        tls.destroy();
      }
    });
    tls.on('error', reject);
    tls.write(o.text ?? UPGRADE(host));
  });
}

describe('WebSocket upgrades', () => {
  it('work on an allowed host, carrying data both ways', async () => {
    const r = await upgrade('ws.test.example');
    assert.match(r.head, /^HTTP\/1\.1 101/);
    assert.equal(r.echo, 'ping through the tunnel');
  });

  it('are refused on a host the allowlist does not name, before anything reaches the upstream', async () => {
    const before = upgrades;
    const r = await upgrade('blocked.test.example');
    assert.match(r.head, /^HTTP\/1\.1 403/);
    assert.match(r.head, /x-errand-block: host_not_allowed/);
    assert.equal(upgrades, before);
  });

  it("end with the task's session: the sockets are errand's to close", {
    timeout: 15_000,
  }, async () => {
    const own = openWsSession();
    const tls = tlsConnect({
      socket: await connectToSession(own, 443),
      servername: 'ws.test.example',
      ca: ca.certPem,
    });
    tls.on('error', () => undefined);
    tls.write(UPGRADE('ws.test.example'));
    const [first] = (await once(tls, 'data')) as [Buffer];
    assert.match(first.toString(), /^HTTP\/1\.1 101/);
    const closed = once(tls, 'close');
    const upstreamBefore = upstreamClosed;
    await own.close();
    await closed;
    await eventually(() => upstreamClosed > upstreamBefore, 'the upstream side to close too');
  });
});

describe('WebSocket handshakes and upstream connections', () => {
  it("do not reuse another task's upstream connection, verified with that task's CA, after a handshake the upstream refused", async () => {
    // An upstream with no WebSocket at all answers a handshake as a plain request and keeps
    // the connection open; its certificate is from a CA only the first task trusts.
    const refusing = createServer({ SNICallback: (_n, cb) => cb(null, wsContext) }, (req, res) => {
      handshakes.push(String(req.headers.host));
      res.writeHead(404, { 'content-length': 2 });
      res.end('no');
    });
    const handshakes: string[] = [];
    let connections = 0;
    refusing.on('secureConnection', () => connections++);
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
    const port = (refusing.address() as AddressInfo).port;
    const allow = parseAllowlist('allow:\n  - host: ws.test.example\n');
    assert.ok(allow.ok);
    const proxy = new ProxyServer({ ca });
    const task = (upstreamCa?: string) =>
      proxy.openSession({
        taskId: 't_ws_pool',
        allowlist: allow.allowlist,
        surrogates: [],
        resolve: { 'ws.test.example': `127.0.0.1:${port}` },
        upstreamCa,
        log: () => undefined,
      });
    const trusting = task(upstreamCaPem);
    const other = task(undefined);
    try {
      const tls = { servername: 'ws.test.example', ca: ca.certPem };
      const first = await rawExchange(trusting, 443, UPGRADE('ws.test.example'), tls);
      assert.match(first.answer, /^HTTP\/1\.1 404/);
      // The other task trusts the system's CAs only: its handshake must fail, not ride the
      // connection the first task's CA vouched for.
      const second = await rawExchange(other, 443, UPGRADE('ws.test.example'), tls);
      assert.doesNotMatch(second.answer, /^HTTP\/1\.1 404/);
      assert.deepEqual(handshakes, ['ws.test.example'], 'only the first handshake reached it');
      assert.equal(connections, 1, "the second task's own connection failed its certificate check");
    } finally {
      await trusting.close();
      await other.close();
      refusing.closeAllConnections();
      refusing.close();
    }
  });
});

describe('only WebSocket upgrades are relayed', () => {
  const rows: Array<{ name: string; text: string }> = [
    {
      name: 'an h2c upgrade',
      text: UPGRADE('ws.test.example', {
        upgrade: 'h2c',
        connection: 'Upgrade, HTTP2-Settings',
        extra: 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n',
      }),
    },
    {
      name: 'an upgrade naming websocket and h2c',
      text: UPGRADE('ws.test.example', { upgrade: 'websocket, h2c' }),
    },
    {
      name: 'an upgrade to another protocol',
      text: UPGRADE('ws.test.example', { upgrade: 'TLS/1.0' }),
    },
    {
      name: 'a WebSocket handshake by POST',
      text: UPGRADE('ws.test.example', { method: 'POST' }),
    },
    {
      name: 'a WebSocket handshake without Sec-WebSocket-Key',
      text: UPGRADE('ws.test.example', { extra: 'Sec-WebSocket-Version: 13\r\n' }),
    },
    {
      name: 'a WebSocket handshake without Sec-WebSocket-Version',
      text: UPGRADE('ws.test.example', {
        extra: 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n',
      }),
    },
  ];
  for (const row of rows) {
    it(`refuses ${row.name} on an allowed host before it reaches the upstream`, async () => {
      const before = { upgrades, requests };
      const r = await upgrade('ws.test.example', { text: row.text });
      assert.match(r.head, /^HTTP\/1\.1 403/);
      assert.match(r.head, /x-errand-block: upgrade_refused/);
      assert.deepEqual({ upgrades, requests }, before, 'nothing reached the upstream');
    });
  }

  it('relays Upgrade: WebSocket in any case, sending upstream only Connection: Upgrade and Upgrade: websocket', async () => {
    const r = await upgrade('ws.test.example', {
      text: UPGRADE('ws.test.example', {
        upgrade: 'WebSocket',
        connection: 'keep-alive, Upgrade, X-Hop',
        extra:
          'X-Hop: for the next hop only\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n',
      }),
    });
    assert.match(r.head, /^HTTP\/1\.1 101/);
    assert.equal(r.echo, 'ping through the tunnel');
    assert.equal(lastUpgrade.connection, 'Upgrade');
    assert.equal(lastUpgrade.upgrade, 'websocket');
    assert.equal(lastUpgrade['x-hop'], undefined);
    assert.equal(lastUpgrade['sec-websocket-key'], 'dGhlIHNhbXBsZSBub25jZQ==');
  });

  it('answers 502 and closes the upstream when it switches to another protocol than websocket', async () => {
    const before = upstreamClosed;
    const r = await upgrade('ws.test.example', {
      text: UPGRADE('ws.test.example', { path: '/switch-to-h2c' }),
    });
    assert.match(r.head, /^HTTP\/1\.1 502/);
    assert.match(r.head, /x-errand-block: upstream_bad_upgrade/);
    await eventually(() => upstreamClosed > before, 'the upstream connection to close');
  });
});

describe('WebSocket handshakes over plain ws://', () => {
  it('are refused when they would carry the real credential in cleartext', async () => {
    const surrogates = surrogatesFor([
      {
        name: 'GH_TOKEN',
        real: REAL_TOKEN,
        hosts: ['ws.test.example'],
        headers: ['Authorization'],
      },
    ]);
    const log: NetworkLogEntry[] = [];
    const own = openWsSession({ surrogates, plain: true, log });
    try {
      const before = { upgrades, requests };
      const r = await upgrade('ws.test.example', {
        on: own,
        port: 80,
        text: UPGRADE('ws.test.example', {
          extra: `Authorization: token ${surrogates[0]!.surrogate}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n`,
        }),
      });
      assert.match(r.head, /^HTTP\/1\.1 403/);
      assert.match(r.head, /x-errand-block: cleartext_credential/);
      assert.deepEqual({ upgrades, requests }, before, 'nothing reached the upstream');
      assert.equal(log[0]!.code, 'cleartext_credential');
    } finally {
      await own.close();
    }
  });

  it('work without a credential', async () => {
    const own = openWsSession({ plain: true });
    try {
      const r = await upgrade('ws.test.example', { on: own, port: 80 });
      assert.match(r.head, /^HTTP\/1\.1 101/);
      assert.equal(r.echo, 'ping through the tunnel');
    } finally {
      await own.close();
    }
  });
});
