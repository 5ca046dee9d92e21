import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type ActiveAwsCredential,
  type Allowlist,
  awsSurrogatesFor,
  CertificateAuthority,
  type NetworkLogEntry,
  ProxyServer,
  type ProxySession,
  parseAllowlist,
  surrogatesFor,
} from '../../src/proxy/index.ts';
import { eventually } from '../harness/gateway-fixture.ts';
import {
  connectToSession,
  rawExchange,
  type Seen,
  startUpstream,
  viaProxy,
} from '../harness/upstream.ts';

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
    allowlist?: string | Allowlist;
    resolve?: Record<string, string>;
    secrets?: boolean;
    aws?: ActiveAwsCredential[];
    cleartext?: string[];
    maxConnections?: number;
    proxy?: ProxyServer;
  } = {},
) {
  const parsed =
    typeof opts.allowlist === 'object'
      ? { ok: true as const, allowlist: opts.allowlist }
      : parseAllowlist(opts.allowlist ?? ALLOWLIST);
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
  const s: ProxySession = (opts.proxy ?? proxy).openSession({
    taskId: 't_test',
    allowlist: (parsed as { allowlist: Allowlist }).allowlist,
    surrogates,
    aws: opts.aws,
    cleartextCredentials: opts.cleartext && new Set(opts.cleartext),
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
    name: 'a dot-dot segment with a ;parameter, which Tomcat and Spring read as ..',
    host: 'api.test.example',
    path: '/v1/..;/admin',
    allowed: false,
    code: 'bad_path',
  },
  {
    name: 'an encoded dot-dot with an encoded ;',
    host: 'api.test.example',
    path: '/v1/%2e%2e%3b/admin',
    allowed: false,
    code: 'bad_path',
  },
  {
    name: 'a dot-dot before an encoded ;parameter',
    host: 'api.test.example',
    path: '/v1/..%3Bx/admin',
    allowed: false,
    code: 'bad_path',
  },
  {
    name: 'a dot segment with a ;parameter',
    host: 'api.test.example',
    path: '/v1/.;x/messages',
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

type Session = Awaited<ReturnType<typeof session>>;

type SessionOptions = Parameters<typeof session>[0];

/**
 * Runs `fn` in a fresh session, closed afterwards whatever happens. Options naming the
 * upstream's ports are given as a function: the upstream starts after the tests are made.
 */
function inSession(
  opts: SessionOptions | (() => SessionOptions),
  fn: (t: Session) => Promise<void>,
): () => Promise<void> {
  return async () => {
    const t = await session(typeof opts === 'function' ? opts() : opts);
    try {
      await fn(t);
    } finally {
      await t.s.close();
    }
  };
}

/** Asserts a refusal with `code` that left the upstream untouched since `before`. */
function assertRefused(
  r: { status: number; headers: Record<string, unknown>; body: string },
  code: string,
  before: number,
  status = 403,
): void {
  assert.equal(r.status, status, r.body);
  assert.equal(r.headers['x-errand-block'], code);
  assert.equal(upstream.seen.length, before, 'nothing reached the upstream');
}

/** The same for an answer read off the socket (`rawExchange`). */
function assertRefusedRaw(answer: string, code: string, before: number, status: number): void {
  assert.match(answer, new RegExp(`^HTTP/1\\.[01] ${status} `));
  assert.match(answer, new RegExp(`x-errand-block: ${code}\r\n`));
  assert.equal(upstream.seen.length, before, 'nothing reached the upstream');
}

const CLOSE = 'Connection: close\r\n\r\n';

/** Rules whose paths tell apart the two ways a server reads `;parameters`. */
const PARAM_ALLOWLIST = `
allow:
  - host: api.test.example
    paths: ["/v1/*", "/files/*.txt", "/*;*"]
`;

describe('paths with ;parameters are allowed only if allowed both with and without them', () => {
  const rows: Array<{ name: string; path: string; allowed: boolean }> = [
    {
      name: 'refuses /files/key;.txt, which a Java server serves as /files/key, outside *.txt',
      path: '/files/secret.key;.txt',
      allowed: false,
    },
    {
      name: 'refuses /admin;x, which a Java server serves as /admin, though a /*;* glob matches it',
      path: '/admin;x',
      allowed: false,
    },
    {
      name: 'refuses /admin;/v1/x, which a Java server serves as /admin/v1/x',
      path: '/admin;/v1/x',
      allowed: false,
    },
    {
      name: 'lets through /v1;x/messages, allowed both as sent (/*;*) and as a Java server reads it (/v1/*)',
      path: '/v1;x/messages',
      allowed: true,
    },
    {
      name: 'lets through an allowed path carrying a harmless ;jsessionid=, as sent',
      path: '/v1/messages;jsessionid=abc123',
      allowed: true,
    },
    { name: 'lets through /files/notes.txt', path: '/files/notes.txt', allowed: true },
  ];
  for (const row of rows) {
    it(
      row.name,
      inSession({ allowlist: PARAM_ALLOWLIST }, async ({ log, send }) => {
        const before = upstream.seen.length;
        const r = await send({ host: 'api.test.example', path: row.path });
        if (row.allowed) {
          assert.equal(r.status, 200, r.body);
          assert.equal(lastSeen()!.url, row.path, 'the upstream gets the path as sent');
        } else {
          assertRefused(r, 'path_not_allowed', before);
          assert.equal(log[0]!.code, 'path_not_allowed');
        }
      }),
    );
  }
});

describe('a #fragment in the request target', () => {
  // A server that parses the target as a URL routes on what comes before the `#`.
  it(
    'refuses /files/secret.key#.txt, which passes *.txt as sent and a server serves as /files/secret.key',
    inSession({ allowlist: PARAM_ALLOWLIST }, async ({ s, log }) => {
      const before = upstream.seen.length;
      const r = await rawExchange(
        s,
        443,
        `GET /files/secret.key#.txt HTTP/1.1\r\nHost: api.test.example\r\n${CLOSE}`,
        { servername: 'api.test.example', ca: ca.certPem },
      );
      assertRefusedRaw(r.answer, 'bad_target', before, 400);
      assert.equal(log[0]!.code, 'bad_target');
    }),
  );

  it(
    'lets through an encoded %23 in a name, sent as it came',
    inSession({ allowlist: PARAM_ALLOWLIST }, async ({ send }) => {
      const r = await send({ host: 'api.test.example', path: '/files/notes%23draft.txt' });
      assert.equal(r.status, 200, r.body);
      assert.equal(lastSeen()!.url, '/files/notes%23draft.txt');
    }),
  );
});

describe('method-override headers are checked like the method', () => {
  /** A POST to /v1/messages, which api.test.example allows with GET, under `headers`. */
  const overridden = (t: Session, headers: Record<string, string | string[]>) =>
    t.send({ host: 'api.test.example', method: 'POST', path: '/v1/messages', headers, body: '{}' });
  const rows: Array<{ name: string; headers: Record<string, string | string[]> }> = [
    { name: 'X-HTTP-Method-Override: DELETE', headers: { 'x-http-method-override': 'DELETE' } },
    { name: 'X-HTTP-Method: delete (any case)', headers: { 'x-http-method': 'delete' } },
    { name: 'X-Method-Override: PUT', headers: { 'x-method-override': 'PUT' } },
    {
      name: 'a comma list with one method not allowed',
      headers: { 'x-http-method-override': 'GET, DELETE' },
    },
    {
      name: 'two override headers, the second not allowed',
      headers: { 'x-http-method-override': ['GET', 'DELETE'] },
    },
  ];
  for (const row of rows) {
    it(
      `refuses a POST overridden by ${row.name}, before it reaches the upstream`,
      inSession({}, async (t) => {
        const before = upstream.seen.length;
        const r = await overridden(t, row.headers);
        assertRefused(r, 'method_not_allowed', before);
        assert.match(r.body, /overridden to (DELETE|PUT)/);
        assert.equal(t.log[0]!.code, 'method_not_allowed');
      }),
    );
  }

  it(
    'forwards an override the rule allows (POST overridden to GET) to the upstream',
    inSession({}, async (t) => {
      const r = await overridden(t, { 'x-http-method-override': 'GET' });
      assert.equal(r.status, 200, r.body);
      assert.equal(lastSeen()!.headers['x-http-method-override'], 'GET');
    }),
  );

  it(
    'neither checks nor forwards a method override that Connection names (it is hop-by-hop)',
    inSession({}, async (t) => {
      const r = await overridden(t, {
        connection: 'x-http-method-override',
        'x-http-method-override': 'DELETE',
      });
      assert.equal(r.status, 200, r.body);
      assert.equal(lastSeen()!.headers['x-http-method-override'], undefined);
    }),
  );
});

describe('TRACE and TRACK', () => {
  // Every method is allowed on this host: the refusal is errand's, not the allowlist's.
  const EVERY_METHOD = { allowlist: 'allow:\n  - host: api.test.example\n', secrets: true };

  it(
    'refuses TRACE, whose answer would echo the real credential, whatever the allowlist says',
    inSession(EVERY_METHOD, async ({ log, send, surrogates }) => {
      const before = upstream.seen.length;
      const r = await send({
        host: 'api.test.example',
        method: 'TRACE',
        path: '/v1/x',
        headers: { authorization: `token ${surrogates[0]!.surrogate}` },
      });
      assertRefused(r, 'method_refused', before);
      assert.doesNotMatch(r.body, /by pull request/, 'no allowlist change can allow it');
      assert.doesNotMatch(r.body, /RealToken/);
      assert.equal(log[0]!.code, 'method_refused');
    }),
  );

  for (const [header, value] of [
    ['x-http-method-override', 'TRACE'],
    ['x-method-override', 'track'],
  ] as const) {
    it(
      `refuses a GET overridden to ${value.toUpperCase()} by ${header}`,
      inSession(EVERY_METHOD, async ({ send }) => {
        const before = upstream.seen.length;
        const r = await send({ host: 'api.test.example', path: '/', headers: { [header]: value } });
        assertRefused(r, 'method_refused', before);
      }),
    );
  }

  it(
    'lets another method through on the same host',
    inSession(EVERY_METHOD, async ({ send }) => {
      const r = await send({ host: 'api.test.example', method: 'OPTIONS', path: '/' });
      assert.equal(r.status, 200, r.body);
      assert.equal(lastSeen()!.method, 'OPTIONS');
    }),
  );
});

describe('headers named in Connection are hop-by-hop (RFC 9110 §7.6.1)', () => {
  it(
    'removes the headers a Connection header names before forwarding',
    inSession({}, async ({ send }) => {
      const r = await send({
        host: 'api.test.example',
        path: '/v1/x',
        headers: { connection: 'keep-alive, X-Hop', 'x-hop': 'for the next hop', 'x-kept': '1' },
      });
      assert.equal(r.status, 200, r.body);
      assert.equal(lastSeen()!.headers['x-hop'], undefined);
      assert.equal(lastSeen()!.headers['x-kept'], '1');
    }),
  );

  it(
    'drops a credential header that Connection names instead of swapping the real value in',
    inSession({ secrets: true }, async ({ log, send, surrogates }) => {
      await send({
        host: 'api.test.example',
        path: '/v1/x',
        headers: {
          connection: 'authorization',
          authorization: `token ${surrogates[0]!.surrogate}`,
        },
      });
      assert.equal(lastSeen()!.headers.authorization, undefined);
      assert.deepEqual(log[0]!.swapped, []);
    }),
  );

  it(
    'strips an Upgrade header sent without Connection: upgrade, forwarding plain HTTP',
    inSession({}, async ({ send }) => {
      const r = await send({
        host: 'api.test.example',
        path: '/v1/x',
        headers: { upgrade: 'h2c' },
      });
      assert.equal(r.status, 200, r.body);
      assert.equal(lastSeen()!.headers.upgrade, undefined);
    }),
  );
});

describe('a request body goes upstream framed as it came', () => {
  // Node's client sends the body of a GET, DELETE or OPTIONS that has no length unframed:
  // the upstream would read it as a second request, one nobody checked.
  const SMUGGLED = 'DELETE /admin HTTP/1.1\r\nHost: api.test.example\r\n\r\n';
  const rows: Array<{ name: string; framing: string; body: string }> = [
    {
      name: 'a chunked GET body',
      framing: 'Transfer-Encoding: chunked\r\nConnection: close\r\n',
      body: `${SMUGGLED.length.toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`,
    },
    {
      name: 'a GET body whose Content-Length the Connection header names',
      framing: `Content-Length: ${SMUGGLED.length}\r\nConnection: close, content-length\r\n`,
      body: SMUGGLED,
    },
  ];
  for (const row of rows) {
    it(
      `does not let ${row.name} smuggle a second, unchecked request to the upstream`,
      inSession({}, async ({ s }) => {
        const before = upstream.seen.length;
        const r = await rawExchange(
          s,
          443,
          `GET /v1/x HTTP/1.1\r\nHost: api.test.example\r\n${row.framing}\r\n${row.body}`,
          { servername: 'api.test.example', ca: ca.certPem },
        );
        assert.match(r.answer, /^HTTP\/1\.1 200/);
        await eventually(() => upstream.seen.length > before, 'the GET to reach the upstream');
        const seen = upstream.seen.slice(before);
        assert.deepEqual(
          seen.map((x) => [x.method, x.url, x.body]),
          [['GET', '/v1/x', SMUGGLED]],
        );
      }),
    );
  }
});

describe('real credentials never go out in cleartext', () => {
  const plain = () => ({
    secrets: true,
    resolve: { 'api.test.example': `127.0.0.1:${upstream.httpPort}` },
  });
  /** A plain HTTP request to api.test.example, with `authorization` if given. */
  const cleartext = (t: Session, authorization?: string) =>
    t.send({
      tls: false,
      host: 'api.test.example',
      path: '/v1/x',
      headers: authorization ? { authorization } : {},
    });

  it(
    'refuses a plain HTTP request that would carry the real credential, telling the agent to use https',
    inSession(plain, async (t) => {
      const before = upstream.seen.length;
      const r = await cleartext(t, `token ${t.surrogates[0]!.surrogate}`);
      assertRefused(r, 'cleartext_credential', before);
      assert.match(
        r.body,
        /GH_TOKEN would be sent to api\.test\.example in cleartext; use https:\/\/api\.test\.example\//,
      );
      assert.deepEqual(
        t.log.map((e) => [e.action, e.code, e.swapped]),
        [['blocked', 'cleartext_credential', []]],
      );
    }),
  );

  it('refuses a plain HTTP request signed with the surrogate AWS key on a scoped host', async () => {
    const aws = awsSurrogatesFor([
      {
        name: 'AWS_PROD',
        accessKeyId: 'AKIAREALKEY000000001',
        secretAccessKey: 'realSecret/Key+0123456789abcdefghijABCDEFG',
        hosts: ['api.test.example'],
      },
    ]);
    await inSession({ ...plain(), secrets: false, aws }, async (t) => {
      const before = upstream.seen.length;
      const r = await t.send({
        tls: false,
        host: 'api.test.example',
        path: '/v1/object',
        headers: {
          authorization: `AWS4-HMAC-SHA256 Credential=${aws[0]!.surrogate.accessKeyId}/20250101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=${'0'.repeat(64)}`,
          'x-amz-date': '20250101T000000Z',
          'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
        },
      });
      assertRefused(r, 'cleartext_credential', before);
    })();
  });

  it(
    'lets a plain HTTP request without a credential through to the same host',
    inSession(plain, async (t) => {
      const r = await cleartext(t);
      assert.equal(r.status, 200, r.body);
    }),
  );

  it(
    'sends the real credential over plain HTTP to a mapped host the operator named for it',
    inSession(
      () => ({ ...plain(), cleartext: ['API.test.example'] }),
      async (t) => {
        const r = await cleartext(t, `token ${t.surrogates[0]!.surrogate}`);
        assert.equal(r.status, 200, r.body);
        assert.equal(lastSeen()!.headers.authorization, `token ${REAL_TOKEN}`);
      },
    ),
  );
});

describe('one canonical host name for the rule, the credential, the mapping, SNI and Host', () => {
  it(
    'reaches the mapped upstream for a name with a trailing dot, sending the canonical name and the real credential',
    inSession({ secrets: true }, async ({ send, surrogates }) => {
      const r = await send({
        servername: 'api.test.example.',
        host: 'api.test.example.',
        path: '/v1/x',
        headers: { authorization: `token ${surrogates[0]!.surrogate}` },
      });
      assert.equal(r.status, 200, r.body);
      const seen = lastSeen()!;
      assert.equal(seen.headers.host, 'api.test.example');
      assert.equal(seen.servername, 'api.test.example');
      assert.equal(seen.headers.authorization, `token ${REAL_TOKEN}`);
    }),
  );

  it(
    'sends a mixed-case name upstream in lower case, in SNI and Host alike',
    inSession({}, async ({ send }) => {
      const r = await send({
        servername: 'API.Test.EXAMPLE',
        host: 'api.TEST.example',
        path: '/v1/x',
      });
      assert.equal(r.status, 200, r.body);
      assert.equal(lastSeen()!.headers.host, 'api.test.example');
      assert.equal(lastSeen()!.servername, 'api.test.example');
    }),
  );

  for (const name of ['api..test.example', '.api.test.example', 'api.test.example..']) {
    it(
      `fails the handshake for the server name "${name}" and logs it as bad_host`,
      inSession({}, async ({ s, log }) => {
        const before = upstream.seen.length;
        const r = await rawExchange(s, 443, `GET /v1/x HTTP/1.1\r\nHost: ${name}\r\n${CLOSE}`, {
          servername: name,
          ca: ca.certPem,
        });
        assert.ok(r.error, `the handshake failed (answer: ${r.answer})`);
        assert.equal(r.answer, '');
        assert.equal(upstream.seen.length, before);
        assert.deepEqual(
          log.map((e) => [e.action, e.code, e.status]),
          [['blocked', 'bad_host', 0]],
        );
      }),
    );
  }

  it(
    'refuses a Host header with an empty label on plain HTTP as bad_host',
    inSession({}, async ({ send }) => {
      const before = upstream.seen.length;
      const r = await send({ tls: false, host: 'other..test.example', path: '/' });
      assertRefused(r, 'bad_host', before, 400);
    }),
  );
});

describe('certificates are bounded per task', () => {
  /** A TLS handshake naming `servername`, then a request the proxy refuses and closes. */
  const handshake = (s: ProxySession, servername: string, trusted = ca.certPem) =>
    rawExchange(s, 443, `GET / HTTP/1.1\r\nHost: x\r\n${CLOSE}`, { servername, ca: trusted });

  it(
    'signs no certificate for each of 5,000 random names no rule admits: past a few, their handshakes fail and each is logged',
    { timeout: 300_000 },
    inSession({}, async ({ s, log, send }) => {
      const cached = ca.cachedHosts;
      const names = Array.from(
        { length: 5000 },
        (_, i) => `r${i}-${Math.random().toString(36).slice(2, 10)}.random.example`,
      );
      let failed = 0;
      // 50 at a time: well under the task's connection limit.
      for (let i = 0; i < names.length; i += 50) {
        const results = await Promise.all(names.slice(i, i + 50).map((n) => handshake(s, n)));
        failed += results.filter((r) => r.error && r.answer === '').length;
      }
      assert.ok(ca.cachedHosts - cached <= 32, `${ca.cachedHosts - cached} certificates made`);
      assert.ok(failed >= 5000 - 32, `${failed} handshakes failed`);
      const atHandshake = log.filter((e) => e.status === 0);
      assert.equal(atHandshake.length, failed);
      assert.ok(atHandshake.every((e) => e.code === 'host_not_allowed' && e.action === 'blocked'));
      assert.ok(names.some((n) => atHandshake.some((e) => e.url === `https://${n}/`)));
      const ok = await send({ host: 'api.test.example', path: '/v1/after' });
      assert.equal(ok.status, 200, 'an allowed name still works');
    }),
  );

  it(
    'still tells the agent which file to change for the first names no rule admits',
    inSession({}, async ({ send }) => {
      const r = await send({ host: 'evil.example.org', path: '/' });
      assert.equal(r.status, 403);
      assert.match(r.body, /evil\.example\.org is not in \.errand\/network-allowlist\.yaml/);
    }),
  );

  it('keeps at most maxHosts certificates, making an evicted one again when it is needed', async () => {
    const small = await CertificateAuthority.loadOrCreate(join(dir, 'small-ca'), { maxHosts: 8 });
    const many = {
      allowlist: 'allow:\n  - host: "*.many.example"\n',
      proxy: new ProxyServer({ ca: small }),
    };
    await inSession(many, async ({ s }) => {
      const ok = async (n: string) =>
        assert.equal((await handshake(s, n, small.certPem)).error, undefined, n);
      for (let i = 0; i < 20; i++) await ok(`h${i}.many.example`);
      assert.equal(small.cachedHosts, 8);
      await ok('h0.many.example');
      assert.equal(small.cachedHosts, 8);
    })();
  });
});

describe('every refusal code, provoked', () => {
  it(
    'refuses a TLS connection that names no server (no_sni), with nothing reaching the upstream',
    inSession({}, async ({ s, log }) => {
      const before = upstream.seen.length;
      const r = await rawExchange(
        s,
        443,
        `GET /v1/x HTTP/1.1\r\nHost: api.test.example\r\n${CLOSE}`,
        // An empty server name sends no SNI; the placeholder certificate is for no real name.
        { servername: '', rejectUnauthorized: false },
      );
      assertRefusedRaw(r.answer, 'no_sni', before, 403);
      assert.equal(log[0]!.code, 'no_sni');
    }),
  );

  it(
    'refuses an HTTP/1.0 request without a Host header (no_host)',
    inSession({}, async ({ s }) => {
      const before = upstream.seen.length;
      const r = await rawExchange(s, 80, 'GET /v1/x HTTP/1.0\r\n\r\n');
      assertRefusedRaw(r.answer, 'no_host', before, 400);
    }),
  );

  it(
    'refuses an absolute-form request target (bad_target)',
    inSession({}, async ({ s }) => {
      const before = upstream.seen.length;
      const r = await rawExchange(
        s,
        80,
        `GET http://other.test.example/ HTTP/1.1\r\nHost: other.test.example\r\n${CLOSE}`,
      );
      assertRefusedRaw(r.answer, 'bad_target', before, 400);
    }),
  );

  it(
    'refuses a CONNECT request (connect_refused) without opening a tunnel',
    inSession({}, async ({ s, log }) => {
      const before = upstream.seen.length;
      const r = await rawExchange(
        s,
        80,
        'CONNECT api.test.example:443 HTTP/1.1\r\nHost: api.test.example:443\r\n\r\n',
      );
      assertRefusedRaw(r.answer, 'connect_refused', before, 403);
      assert.equal(log[0]!.code, 'connect_refused');
    }),
  );

  it(
    'answers 502 upstream_failed when the upstream cannot be reached',
    // Port 9 (discard): nothing listens there on the test machine.
    inSession({ resolve: { 'other.test.example': '127.0.0.1:9' } }, async ({ log, send }) => {
      const before = upstream.seen.length;
      const r = await send({ host: 'other.test.example', path: '/' });
      assertRefused(r, 'upstream_failed', before, 502);
      assert.equal(log[0]!.code, 'upstream_failed');
    }),
  );

  it('denies with 502 proxy_error when the check throws, with nothing reaching the upstream', async () => {
    const throwing = {
      get allow(): Allowlist['allow'] {
        throw new Error('the allowlist could not be read');
      },
    };
    const plainOther = { 'other.test.example': `127.0.0.1:${upstream.httpPort}` };
    await inSession({ resolve: plainOther, allowlist: throwing }, async ({ s, log, send }) => {
      const before = upstream.seen.length;
      const r = await send({ tls: false, host: 'other.test.example', path: '/plain' });
      assertRefused(r, 'proxy_error', before, 502);
      assert.deepEqual(
        log.map((e) => [e.action, e.code]),
        [['blocked', 'proxy_error']],
      );
      const tls = await rawExchange(
        s,
        443,
        `GET / HTTP/1.1\r\nHost: other.test.example\r\n${CLOSE}`,
        {
          servername: 'other.test.example',
          ca: ca.certPem,
        },
      );
      assert.ok(tls.error, 'over TLS the handshake fails: no certificate is made');
      assert.equal(upstream.seen.length, before, 'nothing reached the upstream');
    })();
  });
});
