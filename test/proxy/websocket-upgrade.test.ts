import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import {
  CertificateAuthority,
  ProxyServer,
  type ProxySession,
  parseAllowlist,
} from '../../src/proxy/index.ts';
import { eventually } from '../harness/gateway-fixture.ts';
import { connectToSession } from '../harness/upstream.ts';

let dir: string;
let ca: CertificateAuthority;
let session: ProxySession;
let upstreamPort: number;
let upgrades = 0;
let upstreamClosed = 0;
let close: () => void;
let upstreamCaPem: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'errand-ws-'));
  ca = await CertificateAuthority.loadOrCreate(join(dir, 'ca'));
  const upstreamCa = await CertificateAuthority.loadOrCreate(join(dir, 'up-ca'));
  const ctx = await upstreamCa.contextFor('ws.test.example');
  // An echo server speaking just enough of the upgrade handshake.
  const server = createServer({ SNICallback: (_n, cb) => cb(null, ctx) }, (_req, res) => res.end());
  server.on('upgrade', (_req, sock) => {
    upgrades++;
    sock.on('close', () => upstreamClosed++);
    sock.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
    );
    sock.pipe(sock);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  upstreamPort = (server.address() as AddressInfo).port;
  close = () => {
    server.closeAllConnections();
    server.close();
  };
  upstreamCaPem = upstreamCa.certPem;
  session = openWsSession();
});
after(async () => {
  await session.close();
  close();
  rmSync(dir, { recursive: true, force: true });
});

function openWsSession(): ProxySession {
  const allow = parseAllowlist('allow:\n  - host: ws.test.example\n');
  assert.ok(allow.ok);
  return new ProxyServer({ ca }).openSession({
    taskId: 't_ws',
    allowlist: allow.allowlist,
    surrogates: [],
    resolve: {
      'ws.test.example': `127.0.0.1:${upstreamPort}`,
      'blocked.test.example': `127.0.0.1:${upstreamPort}`,
    },
    upstreamCa: upstreamCaPem,
    log: () => undefined,
  });
}

const UPGRADE = (host: string) =>
  `GET /socket HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;

async function upgrade(host: string): Promise<{ head: string; echo: string }> {
  const raw = await connectToSession(session, 443);
  return new Promise((resolve, reject) => {
    const tls = tlsConnect({
      socket: raw,
      servername: host,
      ca: ca.certPem,
    });
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
    tls.write(UPGRADE(host));
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
