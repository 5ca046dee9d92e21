import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  CertificateAuthority,
  ProxyServer,
  type ProxySession,
  parseAllowlist,
  surrogatesFor,
} from '../../src/proxy/index.ts';
import { viaProxy } from '../harness/upstream.ts';

// docs/DESIGN: "the real value of a credential never flows back into the sandbox
// (responses are checked)". A scoped host that echoes the request (a debugging endpoint,
// an error page quoting the Authorization header, S3's SignatureDoesNotMatch body quoting
// the signature it was given) hands the real value to the sandbox.
const API = 'echo.test.example';
const REAL_TOKEN = 'ghp_RealToken0123456789abcdefghijABCDEFGH';

let dir: string;
let ca: CertificateAuthority;
let echo: Server;
let session: ProxySession;
const secrets = surrogatesFor([
  { name: 'GH_TOKEN', real: REAL_TOKEN, hosts: [API], headers: ['Authorization'] },
]);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'errand-echo-'));
  ca = await CertificateAuthority.loadOrCreate(join(dir, 'ca'));
  const upCa = await CertificateAuthority.loadOrCreate(join(dir, 'up-ca'));
  const ctx = await upCa.contextFor(API);
  echo = createServer({ SNICallback: (_n, cb) => cb(null, ctx) }, (req, res) => {
    res.setHeader('x-seen-authorization', String(req.headers.authorization));
    res.end(JSON.stringify({ authorization: req.headers.authorization }));
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const allow = parseAllowlist(`allow:\n  - host: ${API}\n`);
  assert.ok(allow.ok);
  session = new ProxyServer({ ca }).openSession({
    taskId: 't_echo',
    allowlist: allow.allowlist,
    surrogates: secrets,
    resolve: { [API]: `127.0.0.1:${(echo.address() as AddressInfo).port}` },
    upstreamCa: upCa.certPem,
    log: () => undefined,
  });
});
after(async () => {
  await session.close();
  echo.closeAllConnections();
  echo.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('responses from a host a masked secret is scoped to', () => {
  it('never carry the real value back into the sandbox when the host echoes the request', {
    todo: 'design decision: responses are passed through unchecked; replacing real values by their surrogates in response headers and bodies (streamed, possibly compressed) is a feature to design, not a local fix',
  }, async () => {
    const r = await viaProxy(session, {
      ca: ca.certPem,
      host: API,
      path: '/debug/echo',
      headers: { authorization: `token ${secrets[0]!.surrogate}` },
    });
    assert.equal(r.status, 200);
    assert.doesNotMatch(JSON.stringify(r.headers) + r.body, /RealToken/);
  });

  it('echo nothing of a configured header that did not carry the surrogate (it is dropped)', async () => {
    const r = await viaProxy(session, {
      ca: ca.certPem,
      host: API,
      path: '/debug/echo',
      headers: { authorization: 'token not-the-surrogate' },
    });
    assert.equal(r.status, 200);
    // A configured header without the surrogate is dropped, so nothing is echoed.
    assert.equal(JSON.parse(r.body).authorization, undefined);
  });
});
