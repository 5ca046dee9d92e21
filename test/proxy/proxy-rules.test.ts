import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type Allowlist,
  CertificateAuthority,
  type NetworkLogEntry,
  ProxyServer,
  type ProxySession,
  parseAllowlist,
  surrogatesFor,
} from '../../src/proxy/index.ts';
import { eventually } from '../harness/gateway-fixture.ts';
import { connectToSession, type Seen, startUpstream, viaProxy } from '../harness/upstream.ts';

let dir: string;
let ca: CertificateAuthority;
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let proxy: ProxyServer;
const REAL_TOKEN = 'ghp_RealToken0123456789abcdefghijABCDEFGH';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'errand-proxy-'));
  ca = await CertificateAuthority.loadOrCreate(join(dir, 'ca'));
  upstream = await startUpstream(join(dir, 'upstream-ca'), [
    'api.test.example',
    'other.test.example',
    'x.cdn.example',
  ]);
  proxy = new ProxyServer({ ca });
});
after(async () => {
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

const ALLOWLIST = `
allow:
  - host: api.test.example
    paths: ["/v1/*"]
    methods: [GET, POST]
  - host: "*.cdn.example"
    methods: [GET]
  - host: other.test.example
`;

async function session(
  opts: {
    allowlist?: string;
    resolve?: Record<string, string>;
    secrets?: boolean;
    maxConnections?: number;
  } = {},
) {
  const parsed = parseAllowlist(opts.allowlist ?? ALLOWLIST);
  assert.ok(parsed.ok);
  const log: NetworkLogEntry[] = [];
  const map = opts.resolve ?? {
    'api.test.example': `127.0.0.1:${upstream.httpsPort}`,
    'other.test.example': `127.0.0.1:${upstream.httpsPort}`,
    'x.cdn.example': `127.0.0.1:${upstream.httpsPort}`,
  };
  const surrogates = opts.secrets
    ? surrogatesFor([
        {
          name: 'GH_TOKEN',
          real: REAL_TOKEN,
          hosts: ['api.test.example'],
          headers: ['Authorization', 'X-Token-*'],
        },
      ])
    : [];
  const s: ProxySession = proxy.openSession({
    taskId: 't_test',
    allowlist: (parsed as { allowlist: Allowlist }).allowlist,
    surrogates,
    resolve: map,
    upstreamCa: upstream.caPem,
    log: (e) => log.push(e),
    maxConnections: opts.maxConnections,
  });
  const send = (o: Omit<Parameters<typeof viaProxy>[1], 'ca'>) =>
    viaProxy(s, { ca: ca.certPem, ...o });
  return { s, log, send, surrogates };
}

function lastSeen(): Seen | undefined {
  return upstream.seen.at(-1);
}

/** One row per rule: the request, and whether the proxy must let it through. */
const ROWS: Array<{
  name: string;
  host: string;
  method?: string;
  path: string;
  allowed: boolean;
  code?: string;
}> = [
  {
    name: 'an allowed host, path and method',
    host: 'api.test.example',
    path: '/v1/messages',
    method: 'POST',
    allowed: true,
  },
  {
    name: 'a path outside the host rule',
    host: 'api.test.example',
    path: '/admin',
    allowed: false,
    code: 'path_not_allowed',
  },
  {
    name: 'a method outside the host rule',
    host: 'api.test.example',
    path: '/v1/messages',
    method: 'DELETE',
    allowed: false,
    code: 'method_not_allowed',
  },
  {
    name: 'a subdomain under a *.suffix rule',
    host: 'x.cdn.example',
    path: '/anything',
    allowed: true,
  },
  {
    name: 'a method outside the *.suffix rule',
    host: 'x.cdn.example',
    path: '/anything',
    method: 'PUT',
    allowed: false,
    code: 'method_not_allowed',
  },
  {
    name: 'a host in no rule',
    host: 'evil.example.org',
    path: '/',
    allowed: false,
    code: 'host_not_allowed',
  },
  {
    name: 'the apex of a *.suffix rule',
    host: 'cdn.example',
    path: '/',
    allowed: false,
    code: 'host_not_allowed',
  },
  {
    name: 'a dot-dot path that would escape /v1/',
    host: 'api.test.example',
    path: '/v1/../admin',
    allowed: false,
    code: 'bad_path',
  },
  {
    name: 'an encoded dot-dot',
    host: 'api.test.example',
    path: '/v1/%2e%2e/admin',
    allowed: false,
    code: 'bad_path',
  },
  {
    name: 'an encoded NUL',
    host: 'api.test.example',
    path: '/v1/a%00b',
    allowed: false,
    code: 'bad_path',
  },
  {
    name: 'a backslash',
    host: 'api.test.example',
    path: '/v1/a%5c..%5cadmin',
    allowed: false,
    code: 'bad_path',
  },
  {
    name: 'an upper-case host, matched case-insensitively',
    host: 'API.TEST.EXAMPLE',
    path: '/v1/x',
    allowed: true,
  },
];

describe('the proxy applies the allowlist', () => {
  for (const row of ROWS) {
    it(`${row.allowed ? 'lets through' : 'refuses'} ${row.name}`, async () => {
      const { s, log, send } = await session();
      try {
        const before = upstream.seen.length;
        const r = await send({
          host: row.host,
          method: row.method ?? 'GET',
          path: row.path,
          body: row.method === 'POST' ? '{}' : undefined,
        });
        if (row.allowed) {
          assert.equal(r.status, 200, r.body);
          assert.equal(upstream.seen.length, before + 1);
          assert.equal(lastSeen()!.url, row.path);
          assert.equal(log[0]!.action, 'allowed');
        } else {
          assert.equal(r.status, 403, r.body);
          assert.equal(r.headers['x-errand-block'], row.code);
          const body = JSON.parse(r.body) as { message: string };
          if (row.code !== 'bad_path')
            assert.match(
              body.message,
              /\.errand\/network-allowlist\.yaml on the default branch by pull request/,
            );
          assert.equal(upstream.seen.length, before, 'nothing reached the upstream');
          assert.equal(log[0]!.action, 'blocked');
          assert.equal(log[0]!.code, row.code);
        }
      } finally {
        await s.close();
      }
    });
  }

  it('refuses a Host header that disagrees with the TLS server name', async () => {
    const { s, send } = await session();
    try {
      const before = upstream.seen.length;
      const r = await send({
        servername: 'other.test.example',
        host: 'api.test.example',
        path: '/v1/x',
      });
      assert.equal(r.status, 403);
      assert.equal(r.headers['x-errand-block'], 'host_mismatch');
      assert.equal(upstream.seen.length, before);
    } finally {
      await s.close();
    }
  });

  it('checks plain HTTP on port 80 by its Host header the same way', async () => {
    const { s, send } = await session({
      resolve: { 'other.test.example': `127.0.0.1:${upstream.httpPort}` },
    });
    try {
      const ok = await send({ tls: false, host: 'other.test.example', path: '/plain' });
      assert.equal(ok.status, 200, ok.body);
      const no = await send({ tls: false, host: 'evil.example.org', path: '/' });
      assert.equal(no.status, 403);
    } finally {
      await s.close();
    }
  });

  it('refuses an allowed name that resolves to a private address without an explicit mapping', async () => {
    const { s, send } = await session({ allowlist: 'allow:\n  - host: localhost\n', resolve: {} });
    try {
      const before = upstream.seen.length;
      const r = await send({ host: 'localhost', path: '/' });
      assert.equal(r.status, 403);
      assert.equal(r.headers['x-errand-block'], 'upstream_refused');
      assert.match(r.body, /private address/);
      assert.equal(upstream.seen.length, before);
    } finally {
      await s.close();
    }
  });

  it('writes a network log line per request without query values', async () => {
    const { s, log, send } = await session();
    try {
      await send({ host: 'api.test.example', path: '/v1/list?token=abc123&page=2' });
      await send({ host: 'evil.example.org', path: '/x?secret=zzz' });
      assert.deepEqual(
        log.map((e) => [e.action, e.method, e.url, e.status]),
        [
          ['allowed', 'GET', 'https://api.test.example/v1/list?token=…&page=…', 200],
          ['blocked', 'GET', 'https://evil.example.org/x?secret=…', 403],
        ],
      );
      assert.doesNotMatch(JSON.stringify(log), /abc123|zzz/);
    } finally {
      await s.close();
    }
  });
});

describe('the proxy protects errand itself', () => {
  it("closes connections beyond the task's limit, logs it once, and serves again when one ends", async () => {
    const { s, log, send } = await session({ maxConnections: 2 });
    try {
      const held = [await connectToSession(s, 443), await connectToSession(s, 80)];
      const extra = await connectToSession(s, 443);
      await new Promise((r) => extra.once('close', r));
      const again = await connectToSession(s, 443);
      await new Promise((r) => again.once('close', r));
      assert.deepEqual(
        log.map((e) => [e.action, e.code, e.url]),
        [['blocked', 'too_many_connections', 'https://-']],
      );
      held[0]!.destroy();
      // The proxy counts the connection closed once it sees it; a request then gets through.
      const r = await eventually(async () => {
        const res = await send({ host: 'api.test.example', path: '/v1/ok' }).catch(() => undefined);
        return res?.status === 200 ? res : undefined;
      }, 'a request after one connection ended');
      assert.equal(r.status, 200);
      held[1]!.destroy();
    } finally {
      await s.close();
    }
  });
});

describe('surrogate credentials', () => {
  it('reach the scoped host as the real value, in the configured headers only', async () => {
    const { s, log, send, surrogates } = await session({ secrets: true });
    const surrogate = surrogates[0]!.surrogate;
    try {
      assert.notEqual(surrogate, REAL_TOKEN);
      assert.equal(surrogate.length, REAL_TOKEN.length);
      assert.ok(surrogate.startsWith('ghp_'));
      await send({
        host: 'api.test.example',
        path: '/v1/x',
        headers: {
          authorization: `token ${surrogate}`,
          'x-token-extra': surrogate,
          'x-other': surrogate,
        },
      });
      const h = lastSeen()!.headers;
      assert.equal(h.authorization, `token ${REAL_TOKEN}`);
      assert.equal(h['x-token-extra'], REAL_TOKEN);
      assert.equal(h['x-other'], surrogate, 'a header not configured is left alone');
      assert.deepEqual(log[0]!.swapped, ['GH_TOKEN']);
    } finally {
      await s.close();
    }
  });

  it('go to other hosts as the useless surrogate', async () => {
    const { s, send, surrogates } = await session({ secrets: true });
    const surrogate = surrogates[0]!.surrogate;
    try {
      await send({
        host: 'other.test.example',
        path: '/x',
        headers: { authorization: `Bearer ${surrogate}` },
      });
      assert.equal(lastSeen()!.headers.authorization, `Bearer ${surrogate}`);
      assert.doesNotMatch(JSON.stringify(lastSeen()), /RealToken/);
    } finally {
      await s.close();
    }
  });

  it('are swapped inside Basic auth, as git sends them', async () => {
    const { s, send, surrogates } = await session({ secrets: true });
    const surrogate = surrogates[0]!.surrogate;
    try {
      const basic = Buffer.from(`x-access-token:${surrogate}`).toString('base64');
      await send({
        host: 'api.test.example',
        path: '/v1/repo.git/info/refs',
        headers: { authorization: `Basic ${basic}` },
      });
      const got = Buffer.from(
        String(lastSeen()!.headers.authorization).slice(6),
        'base64',
      ).toString();
      assert.equal(got, `x-access-token:${REAL_TOKEN}`);
    } finally {
      await s.close();
    }
  });

  it('drop a configured header that carries anything but the surrogate on the scoped host', async () => {
    const { s, send } = await session({ secrets: true });
    try {
      await send({
        host: 'api.test.example',
        path: '/v1/x',
        headers: { authorization: 'token ghp_SomethingTheAgentFoundElsewhere000000' },
      });
      assert.equal(lastSeen()!.headers.authorization, undefined);
    } finally {
      await s.close();
    }
  });

  it('are new for every task', () => {
    const a = surrogatesFor([
      { name: 'K', real: REAL_TOKEN, hosts: ['x'], headers: ['Authorization'] },
    ])[0]!.surrogate;
    const b = surrogatesFor([
      { name: 'K', real: REAL_TOKEN, hosts: ['x'], headers: ['Authorization'] },
    ])[0]!.surrogate;
    assert.notEqual(a, b);
  });
});
