import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import {
  awsSurrogatesFor,
  CertificateAuthority,
  checkResponse,
  formsOf,
  makeSurrogate,
  ProxyServer,
  type ProxySession,
  parseAllowlist,
  ReflectionMask,
  surrogatesFor,
} from '../../src/proxy/index.ts';
import { verifyPresigned } from '../harness/aws-verifier.ts';
import { connectToSession, startUpstream, viaProxy } from '../harness/upstream.ts';

// The attacker is the agent; the upstreams are honest hosts that hand back what they got
// (an echo, an error page, a redirect). Each must give the sandbox the surrogate only.
const REAL = 'ghp_RealForgeToken0123456789abcdefABCDEF';
// The secret key and session token carry `/`, `+` and `=`: their percent-encoded forms differ.
const REAL_AWS = {
  accessKeyId: 'AKIAECHOEDKEY0000002',
  secretAccessKey: 'echoedSecret/Key+0123456789abcdefghijABCD',
  sessionToken: 'IQoJb3JpZ2luX2VjECHOEDSESSIONTOKEN0123/+=',
};
const API = 'api.test.example';
const CDN = 'cdn.test.example';
const S3 = 'bucket.s3.us-east-1.amazonaws.com';

let dir: string;
let ca: CertificateAuthority;
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let session: ProxySession;
const surrogates = surrogatesFor([
  { name: 'GH_TOKEN', real: REAL, hosts: [API], headers: ['Authorization'] },
]);
const SUR = surrogates[0]!.surrogate;
const aws = awsSurrogatesFor([{ name: 'AWS_PROD', ...REAL_AWS, hosts: ['*.amazonaws.com'] }]);
const SUR_AWS = aws[0]!.surrogate;
const policy = {
  taskId: 't_reflect',
  allowlist: { allow: [] as never[] },
  surrogates,
  aws,
  resolve: {} as Record<string, string>,
  log: () => undefined,
};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'errand-reflect-'));
  ca = await CertificateAuthority.loadOrCreate(join(dir, 'ca'));
  upstream = await startUpstream(join(dir, 'up'), [API, CDN, S3]);
  const allow = parseAllowlist(`allow:\n  - host: ${API}\n  - host: ${CDN}\n  - host: ${S3}\n`);
  assert.ok(allow.ok);
  policy.allowlist = allow.allowlist as never;
  policy.resolve = Object.fromEntries(
    [API, CDN, S3].map((h) => [h, `127.0.0.1:${upstream.httpsPort}`]),
  );
  session = new ProxyServer({ ca }).openSession({ ...policy, upstreamCa: upstream.caPem });
});
after(async () => {
  await session.close();
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

const get = (host: string, path: string, headers: Record<string, string> = {}) =>
  viaProxy(session, { ca: ca.certPem, host, path, headers });

/** Everything of a response the sandbox can read, as one string. */
const visible = (r: { headers: object; body: string }) => `${JSON.stringify(r.headers)}\n${r.body}`;

function lastSeen() {
  return upstream.seen[upstream.seen.length - 1]!;
}

describe('the real value of a secret never comes back into the sandbox', () => {
  it('an upstream that echoes the request hands back only the surrogate', async () => {
    const r = await get(API, '/echo', { authorization: `token ${SUR}`, 'accept-encoding': 'gzip' });
    assert.equal(r.status, 200);
    // The real value did reach the upstream, so its echo carried it.
    assert.equal(lastSeen().headers.authorization, `token ${REAL}`);
    assert.equal(lastSeen().headers['accept-encoding'], 'identity');
    assert.doesNotMatch(visible(r), new RegExp(REAL));
    assert.equal(JSON.parse(r.body).headers.authorization, `token ${SUR}`);
    assert.equal(r.headers['x-echo-authorization'], `token ${SUR}`);
    assert.deepEqual(r.headers['set-cookie'], [`session=${SUR}; Path=/`]);
    assert.match(String(r.headers['www-authenticate']), new RegExp(`token="${SUR}"`));
    // Length-preserving: the upstream's Content-Length is still the body's length.
    assert.equal(Number(r.headers['content-length']), r.bytes.length);
  });

  it('a Location header carrying the real token is rewritten', async () => {
    const r = await get(
      API,
      `/redirect?to=${encodeURIComponent('https://cb.example/done?t={auth}')}`,
      {
        authorization: `token ${SUR}`,
      },
    );
    assert.equal(r.status, 307);
    assert.equal(lastSeen().headers.authorization, `token ${REAL}`);
    assert.equal(r.headers.location, `https://cb.example/done?t=${SUR}`);
  });

  it('a real value split across two chunks is still masked', async () => {
    const r = await get(API, '/echo?split=1', { authorization: `token ${SUR}` });
    assert.equal(r.status, 200);
    assert.doesNotMatch(r.body, new RegExp(REAL));
    assert.equal(JSON.parse(r.body).headers.authorization, `token ${SUR}`);
  });

  it('a real value split at any byte between two reads is masked by the body stream', () => {
    const mask = ReflectionMask.of(policy);
    const text = Buffer.from(
      `{"echo":"${REAL}","again":"${encodeURIComponent(REAL_AWS.secretAccessKey)}"}`,
    );
    const expected = Buffer.from(
      `{"echo":"${SUR}","again":"${encodeURIComponent(SUR_AWS.secretAccessKey)}"}`,
    );
    for (let cut = 0; cut <= text.length; cut++) {
      // The masker bodies and WebSocket frames go through, fed the two reads.
      const m = mask.stream();
      const out = Buffer.concat([
        m.push(text.subarray(0, cut)),
        m.push(text.subarray(cut)),
        m.end(),
      ]);
      assert.equal(out.toString(), expected.toString(), `cut at ${cut}`);
    }
  });

  it('a base64 Basic-auth echo at every alignment is masked', async () => {
    for (const user of ['abc', 'abcd', 'abcde']) {
      const basic = (v: string) => Buffer.from(`${user}:${v}`).toString('base64');
      const r = await get(API, '/echo', { authorization: `Basic ${basic(SUR)}` });
      assert.equal(lastSeen().headers.authorization, `Basic ${basic(REAL)}`, user);
      const echoed = String(r.headers['x-echo-authorization']).split(' ')[1]!;
      const body = JSON.parse(r.body).headers.authorization.split(' ')[1];
      for (const b64 of [echoed, body]) {
        const decoded = Buffer.from(b64, 'base64').toString('latin1');
        assert.ok(!decoded.includes(REAL), `${user}: ${decoded}`);
        // Only the edge characters, mixed with the neighbouring bytes, are left as they were.
        assert.ok(decoded.includes(SUR.slice(1, -1)), `${user}: ${decoded}`);
      }
      assert.equal(Number(r.headers['content-length']), r.bytes.length);
    }
  });

  it('every masked form is as long as the real one, the base64 cores at all three alignments included', () => {
    for (const real of [
      REAL,
      REAL_AWS.secretAccessKey,
      REAL_AWS.sessionToken,
      'pässwörd-ÄÖ/1+2=3 "x"\\y',
    ]) {
      for (let n = 0; n < 20; n++) {
        const sur = makeSurrogate(real);
        const forms = formsOf(real, sur);
        for (const f of forms) assert.equal(f.to.length, f.from.length, `${real}: ${f.from}`);
        for (const k of [0, 1, 2]) {
          const stream = Buffer.concat([
            Buffer.alloc(k, 120),
            Buffer.from(real),
            Buffer.alloc(2, 120),
          ]);
          const b64 = stream.toString('base64');
          assert.ok(
            forms.some((f) => b64.includes(f.from.toString())),
            `no core of ${real} at alignment ${k}`,
          );
        }
      }
    }
  });

  it('the one-pass search replaces every occurrence a search per form finds', () => {
    const alphabet = 'ab0/+=';
    const pick = (n: number) =>
      Array.from({ length: n }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join(
        '',
      );
    for (let round = 0; round < 50; round++) {
      // Values of 2 to 60 characters over a tiny alphabet, planted in filler from the same
      // alphabet: many near-misses and overlaps at every offset and sampling phase.
      const values = Array.from({ length: 1 + (round % 4) }, (_, i) => {
        const real = `K${i}${pick(2 + Math.floor(Math.random() * 58))}`;
        return { real, surrogate: makeSurrogate(real) };
      });
      const mask = new ReflectionMask(values, ['h']);
      const forms = values.flatMap((v) => formsOf(v.real, v.surrogate));
      const parts: string[] = [];
      for (let i = 0; i < 40; i++) {
        parts.push(pick(Math.floor(Math.random() * 40)));
        const f = forms[Math.floor(Math.random() * forms.length)]!;
        parts.push(f.from.toString());
      }
      const data = Buffer.from(parts.join(''));
      const out = mask.bytes(data);
      assert.equal(out.length, data.length);
      for (const f of forms) {
        // A form in the output can only be one made up of surrogate bytes; none is a planted one.
        for (let at = out.indexOf(f.from); at >= 0; at = out.indexOf(f.from, at + 1))
          assert.notEqual(
            data.subarray(at, at + f.from.length).compare(f.from),
            0,
            `${f.from} at ${at}`,
          );
      }
    }
  });

  it('a gzip response from a scoped host is checked', async () => {
    const r = await get(API, '/echo?gzip=1', { authorization: `token ${SUR}` });
    assert.equal(r.status, 200);
    // Decompressed to be checked, and sent on uncompressed.
    assert.equal(r.headers['content-encoding'], undefined);
    assert.doesNotMatch(r.body, new RegExp(REAL));
    assert.equal(JSON.parse(r.body).headers.authorization, `token ${SUR}`);
  });

  it('a body from a scoped host that does not decode as its Content-Encoding says is cut off, nothing of it passed on', async () => {
    // The upstream labels its uncompressed echo gzip: the real value is in it, undecoded.
    await assert.rejects(
      get(API, '/echo?encoding=gzip', { authorization: `token ${SUR}` }),
      /aborted|socket hang up|ECONNRESET/,
    );
    assert.equal(lastSeen().headers.authorization, `token ${REAL}`);
  });

  it('a response from a scoped host in an encoding errand cannot decode is refused, its body unread', async () => {
    const r = await get(API, '/echo?encoding=compress', { authorization: `token ${SUR}` });
    assert.equal(r.status, 502);
    assert.equal(r.headers['x-errand-block'], 'response_encoding_unsupported');
    assert.doesNotMatch(visible(r), new RegExp(REAL));
    assert.match(JSON.parse(r.body).message, /Content-Encoding "compress"/);
  });

  it('a transfer-coded (gzip, chunked) response from a scoped host is refused, its body unread', async () => {
    const r = await get(API, '/echo?te=gzip', { authorization: `token ${SUR}` });
    assert.equal(lastSeen().headers.authorization, `token ${REAL}`);
    assert.equal(r.status, 502);
    assert.equal(r.headers['x-errand-block'], 'response_encoding_unsupported');
    assert.match(JSON.parse(r.body).message, /Transfer-Encoding "gzip, chunked"/);
  });

  it('Range requests cannot fetch the echoed real value in two parts: a partial response from a scoped host is refused', async () => {
    // Each part misses one end of the value, so no mask can tell it from any other text;
    // the two parts together are the value.
    const whole = await get(API, '/echo?ranges=1', { authorization: `token ${SUR}` });
    const at = whole.bytes.indexOf(SUR);
    assert.ok(at > 0);
    const parts = [];
    for (const [from, to] of [
      [at, at + REAL.length - 2],
      [at + 1, at + REAL.length - 1],
    ]) {
      const r = await get(API, '/echo?ranges=1', {
        authorization: `token ${SUR}`,
        range: `bytes=${from}-${to}`,
      });
      assert.equal(lastSeen().headers.authorization, `token ${REAL}`);
      assert.equal(lastSeen().headers.range, `bytes=${from}-${to}`);
      assert.equal(r.status, 502, r.body);
      assert.equal(r.headers['x-errand-block'], 'response_partial_refused');
      parts.push(r.body);
    }
    assert.notEqual(parts[0] + parts[1]!.slice(-1), REAL);
    assert.ok(
      !parts.join('').includes(REAL.slice(0, -1)) && !parts.join('').includes(REAL.slice(1)),
    );
  });

  it('a byte range from a host only an AWS key is scoped to is passed on (the secret key never leaves errand)', async () => {
    const r = await get(S3, '/echo?ranges=1', { range: 'bytes=0-9' });
    assert.equal(r.status, 206, r.body);
    assert.equal(r.bytes.length, 10);
    assert.match(String(r.headers['content-range']), /^bytes 0-9\/\d+$/);
  });

  it('a presigned redirect with the real AWS key comes back with the surrogate key', async () => {
    // The upstream hands out a URL presigned with the real key, as S3 or an SDK-backed
    // service would for the caller's credential.
    const signer = new SignatureV4({
      credentials: REAL_AWS,
      region: 'us-east-1',
      service: 's3',
      sha256: Hash.bind(null, 'sha256'),
      uriEscapePath: false,
    });
    const presigned = await signer.presign(
      {
        method: 'GET',
        protocol: 'https:',
        hostname: S3,
        path: '/shared.bin',
        query: {},
        headers: { host: S3 },
      },
      { expiresIn: 300 },
    );
    const qs = new URLSearchParams(presigned.query as Record<string, string>).toString();
    const r = await get(S3, `/redirect?to=${encodeURIComponent(`https://${S3}/shared.bin?${qs}`)}`);
    assert.equal(r.status, 307);
    const location = new URL(String(r.headers.location));
    assert.doesNotMatch(visible(r), /ECHOEDKEY|echoedSecret|ECHOEDSESSION/);
    assert.match(
      location.searchParams.get('X-Amz-Credential')!,
      new RegExp(`^${SUR_AWS.accessKeyId}/`),
    );
    assert.equal(location.searchParams.get('X-Amz-Security-Token'), SUR_AWS.sessionToken);

    // The sandbox follows it: the proxy signs it again with the real key, and it verifies.
    const followed = await get(S3, `${location.pathname}${location.search}`);
    assert.equal(followed.status, 200);
    const seen = new URL(lastSeen().url, 'https://x');
    assert.match(
      seen.searchParams.get('X-Amz-Credential')!,
      new RegExp(`^${REAL_AWS.accessKeyId}/`),
    );
    // As S3 checks it (a presigned URL signs UNSIGNED-PAYLOAD), with the real key.
    const verdict = verifyPresigned(lastSeen(), REAL_AWS);
    assert.ok(verdict.ok, verdict.ok ? '' : verdict.why);
  });

  it('a large binary download from an unscoped host is byte-identical, with nothing in its path', async () => {
    const mask = ReflectionMask.of(policy);
    const response = { statusCode: 200, statusMessage: 'OK', headers: {} };
    const bodyCheck = (host: string) => {
      const out = checkResponse(mask, host, 'GET', response, () => true);
      assert.ok(out.ok);
      return out.body;
    };
    assert.equal(bodyCheck(CDN), undefined);
    assert.ok(bodyCheck(API));
    // The real value planted in it stays: that host never received it (docs/security.md, limits).
    const r = await get(CDN, `/random/${8 * 1024 * 1024}?plant=${REAL}`);
    assert.equal(r.bytes.length, 8 * 1024 * 1024);
    assert.equal(createHash('sha256').update(r.bytes).digest('hex'), r.headers['x-body-sha256']);
    assert.ok(r.bytes.includes(REAL));
  });

  it('a binary download from a scoped host holding no real value arrives byte-identical', async () => {
    const r = await get(API, `/random/${4 * 1024 * 1024}`);
    assert.equal(r.bytes.length, 4 * 1024 * 1024);
    assert.equal(createHash('sha256').update(r.bytes).digest('hex'), r.headers['x-body-sha256']);
  });
});

/** A WebSocket handshake through the proxy, then the server frames that come back. */
async function webSocket(
  path: string,
  frames: number,
): Promise<{ head: string; payloads: string[]; closed: boolean }> {
  const raw = await connectToSession(session, 443);
  return new Promise((resolve, reject) => {
    const tls = tlsConnect({ socket: raw, servername: API, ca: ca.certPem });
    let buf = Buffer.alloc(0);
    let head = '';
    const payloads: string[] = [];
    const done = (closed: boolean) => {
      tls.destroy();
      resolve({ head, payloads, closed });
    };
    tls.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (!head) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        head = buf.subarray(0, end).toString('latin1');
        buf = buf.subarray(end + 4);
      }
      for (;;) {
        if (buf.length < 2) break;
        const len7 = buf[1]! & 0x7f;
        const size = len7 === 126 ? 4 : 2;
        const len = len7 === 126 ? buf.readUInt16BE(2) : len7;
        if (buf.length < size + len) break;
        payloads.push(buf.subarray(size, size + len).toString());
        buf = buf.subarray(size + len);
      }
      if (payloads.length >= frames) done(false);
    });
    tls.on('close', () => done(true));
    tls.on('error', reject);
    tls.write(
      `GET ${path} HTTP/1.1\r\nHost: ${API}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\nAuthorization: token ${SUR}\r\n\r\n`,
    );
  });
}

describe('the real value never comes back over a WebSocket', () => {
  it('a WebSocket echo on a scoped host does not return the real value', async () => {
    for (const path of ['/ws-echo', '/ws-echo?split=1']) {
      const r = await webSocket(path, 1);
      assert.match(r.head, /^HTTP\/1\.1 101/);
      assert.equal(lastSeen().headers.authorization, `token ${REAL}`);
      assert.match(r.head, new RegExp(`x-echo-authorization: token ${SUR}`));
      const greeting = JSON.parse(r.payloads[0]!) as { headers: Record<string, string> };
      assert.equal(greeting.headers.authorization, `token ${SUR}`, path);
      // No compression was offered to the upstream, so its frames stay readable.
      assert.equal(greeting.headers['sec-websocket-extensions'], undefined);
      assert.doesNotMatch(`${r.head}${r.payloads.join('')}`, new RegExp(REAL));
    }
  });

  it('a WebSocket frame ending in the start of a real value is delivered at once', {
    timeout: 20_000,
  }, async () => {
    const r = await webSocket(`/ws-echo?then=${encodeURIComponent('next: ghp_')}`, 2);
    assert.equal(r.payloads[1], 'next: ghp_');
  });

  it('a WebSocket frame the proxy cannot read (masked or compressed) closes the connection without its payload', async () => {
    for (const how of ['masked', 'rsv1']) {
      const r = await webSocket(`/ws-echo?unreadable=${how}`, 1);
      assert.match(r.head, /^HTTP\/1\.1 101/);
      assert.equal(r.closed, true, how);
      assert.deepEqual(r.payloads, [], how);
    }
  });
});
