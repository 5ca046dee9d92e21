import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer as createNetServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import {
  awsSurrogatesFor,
  CertificateAuthority,
  type NetworkLogEntry,
  ProxyServer,
  type ProxySession,
  parseAllowlist,
  surrogatesFor,
} from '../../src/proxy/index.ts';
import { connectToSession, startUpstream, viaProxy } from '../harness/upstream.ts';

// Port 80 is served too (plain HTTP, checked like HTTPS), and the proxy speaks plain HTTP
// upstream for it: a real credential put into such a request crosses the network in
// cleartext, readable by anyone on the path.
const API = 'api.test.example';
const WS = 'ws.test.example';
const S3 = 'bucket.s3.us-east-1.amazonaws.com';
const REAL_TOKEN = 'ghp_RealToken0123456789abcdefghijABCDEFGH';
const REAL_AWS = {
  accessKeyId: 'AKIAREALKEY000000001',
  secretAccessKey: 'realSecret/Key+0123456789abcdefghijABCDEFG',
};

let dir: string;
let ca: CertificateAuthority;
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let session: ProxySession;
/** A plain TCP upstream for WebSocket upgrades: it records every byte it receives. */
let raw: Server;
let rawReceived = '';
const log: NetworkLogEntry[] = [];
const secrets = surrogatesFor([
  { name: 'GH_TOKEN', real: REAL_TOKEN, hosts: [API], headers: ['Authorization'] },
]);
const aws = awsSurrogatesFor([{ name: 'AWS_PROD', ...REAL_AWS, hosts: ['*.amazonaws.com'] }]);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'errand-cleartext-'));
  ca = await CertificateAuthority.loadOrCreate(join(dir, 'ca'));
  upstream = await startUpstream(join(dir, 'up'), [API, S3]);
  raw = createNetServer((s) => {
    s.on('data', (c) => {
      rawReceived += c;
      s.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  const allow = parseAllowlist(`allow:\n  - host: ${API}\n  - host: ${S3}\n  - host: ${WS}\n`);
  assert.ok(allow.ok);
  session = new ProxyServer({ ca }).openSession({
    taskId: 't_cleartext',
    allowlist: allow.allowlist,
    surrogates: [
      ...secrets,
      { ...secrets[0]!, name: 'WS_TOKEN', hosts: [WS], surrogate: secrets[0]!.surrogate },
    ],
    aws,
    // Both names lead to the upstream's plain HTTP port for requests made on port 80.
    resolve: {
      [API]: `127.0.0.1:${upstream.httpPort}`,
      [S3]: `127.0.0.1:${upstream.httpPort}`,
      [WS]: `127.0.0.1:${(raw.address() as AddressInfo).port}`,
    },
    upstreamCa: upstream.caPem,
    log: (e) => log.push(e),
  });
});
after(async () => {
  await session.close();
  await upstream.close();
  raw.close();
  rmSync(dir, { recursive: true, force: true });
});

const plain = (o: { host: string; path: string; headers?: Record<string, string> }) =>
  viaProxy(session, { tls: false, ca: ca.certPem, ...o });

describe('a real credential never crosses the network in cleartext', () => {
  it('refuses a masked secret on plain HTTP (port 80) instead of swapping it in, and nothing reaches the upstream', async () => {
    const before = upstream.seen.length;
    const r = await plain({
      host: API,
      path: '/user',
      headers: { authorization: `token ${secrets[0]!.surrogate}` },
    });
    assert.equal(r.status, 403, r.body);
    assert.equal(r.headers['x-errand-block'], 'credential_over_http');
    assert.match(r.body, /GH_TOKEN/);
    assert.match(r.body, /https:\/\/api\.test\.example/);
    assert.equal(upstream.seen.length, before, 'nothing reached the upstream');
    assert.doesNotMatch(JSON.stringify(log.at(-1)), /RealToken/);
  });

  it('still sends a plain HTTP request that carries no surrogate', async () => {
    const before = upstream.seen.length;
    const r = await plain({ host: API, path: '/plain', headers: { authorization: 'token mine' } });
    assert.equal(r.status, 200, r.body);
    assert.equal(upstream.seen.length, before + 1);
    // The configured header did not carry the surrogate: dropped, as on HTTPS.
    assert.equal(upstream.seen.at(-1)!.headers.authorization, undefined);
  });

  it('refuses to re-sign an AWS request with the real key on plain HTTP, and nothing reaches the upstream', async () => {
    const signed = await new SignatureV4({
      credentials: aws[0]!.surrogate,
      region: 'us-east-1',
      service: 's3',
      sha256: Hash.bind(null, 'sha256'),
      uriEscapePath: false,
    }).sign({
      method: 'GET',
      protocol: 'http:',
      hostname: S3,
      path: '/key.txt',
      query: {},
      headers: { host: S3, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    });
    const before = upstream.seen.length;
    const r = await plain({
      host: S3,
      path: '/key.txt',
      headers: signed.headers as Record<string, string>,
    });
    assert.equal(r.status, 403, r.body);
    assert.equal(r.headers['x-errand-block'], 'credential_over_http');
    assert.equal(upstream.seen.length, before, 'no request signed with the real key went out');
  });

  it('refuses a masked secret in a WebSocket upgrade on plain HTTP, and the upstream receives nothing', async () => {
    const sock = await connectToSession(session, 80);
    let answer = '';
    sock.on('data', (c) => {
      answer += c;
    });
    sock.write(
      `GET /socket HTTP/1.1\r\nHost: ${WS}\r\nAuthorization: Bearer ${secrets[0]!.surrogate}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    );
    await new Promise((r) => sock.once('close', r));
    // The upstream would have had the connection by now, had the proxy opened one.
    const check = await plain({ host: API, path: '/after' });
    assert.equal(check.status, 200);
    assert.doesNotMatch(rawReceived, /RealToken/, 'the real token did not go out');
    assert.equal(rawReceived, '', 'nothing reached the WebSocket upstream');
    assert.match(answer, /^HTTP\/1\.1 403 /);
    assert.match(answer, /x-errand-block: credential_over_http/);
  });
});
