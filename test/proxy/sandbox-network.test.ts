import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BASE_IMAGE } from '../../src/sandbox/index.ts';
import { cli, tempHome } from '../harness/cli.ts';
import { git } from '../harness/git.ts';
import { gitHttpBackend } from '../harness/git-http.ts';
import { startUpstream } from '../harness/upstream.ts';

// Real podman, curl, git and Node inside the container; local HTTPS servers on loopback,
// reached only through errand's proxy with --resolve.
const REAL_TOKEN = 'ghp_RealForgeToken0123456789abcdefABCDEF';
let home: string;
let env: NodeJS.ProcessEnv;
let project: string;
let upstream: Awaited<ReturnType<typeof startUpstream>>;
const pushes: string[] = [];
let resolveArgs: string[];

before(async () => {
  ({ home, env } = tempHome());
  const forge = join(home, 'forge');
  mkdirSync(forge);
  git(forge, 'init', '-q', '--bare', 'repo.git');
  git(join(forge, 'repo.git'), 'config', 'http.receivepack', 'true');
  upstream = await startUpstream(
    join(home, 'upstream-ca'),
    ['api.test.example', 'other.test.example', 'git.test.example'],
    {
      git: gitHttpBackend(forge, { token: REAL_TOKEN, pushes }),
    },
  );
  writeFileSync(join(home, 'upstream-ca.pem'), upstream.caPem);
  resolveArgs = [
    ...['api.test.example', 'other.test.example', 'git.test.example'].flatMap((h) => [
      '--resolve',
      `${h}=127.0.0.1:${upstream.httpsPort}`,
    ]),
    // A host served over plain HTTP, where the surrogate is scoped too.
    '--resolve',
    `plain.test.example=127.0.0.1:${upstream.httpPort}`,
  ];

  project = join(home, 'project');
  mkdirSync(join(project, '.errand', 'container'), { recursive: true });
  writeFileSync(join(project, '.errand', 'container', 'Containerfile'), `FROM ${BASE_IMAGE}\n`);
  writeFileSync(
    join(project, '.errand', 'network-allowlist.yaml'),
    'allow:\n  - host: api.test.example\n    paths: ["/v1/*"]\n    methods: [GET, POST]\n  - host: other.test.example\n    methods: [GET]\n  - host: git.test.example\n  - host: plain.test.example\n',
  );
  writeFileSync(
    join(project, '.errand', 'sandbox.yaml'),
    'masked_secrets:\n  GH_TOKEN:\n    value: !env FORGE_TOKEN\n    hosts: [api.test.example, git.test.example, plain.test.example]\n',
  );
  git(project, 'init', '-q', '-b', 'main');
  git(project, 'add', '-A');
  git(project, 'commit', '-q', '-m', 'init');
});
after(async () => {
  await upstream.close();
  rmSync(home, { recursive: true, force: true });
});

function inSandbox(script: string, extra: string[] = []) {
  return cli(
    [
      'sandbox',
      'run',
      ...resolveArgs,
      '--upstream-ca',
      join(home, 'upstream-ca.pem'),
      ...extra,
      '--',
      'bash',
      '-c',
      script,
    ],
    {
      env: { ...env, FORGE_TOKEN: REAL_TOKEN },
      cwd: project,
      timeoutMs: 180_000,
    },
  );
}

const curl = (args: string) => `curl -sS -m 10 -o /dev/null -w '%{http_code}\\n' ${args}`;

describe('the network sandbox, from inside a container', () => {
  it('lets allowed requests through and refuses each rule, with nothing refused reaching the upstream', async () => {
    const before = upstream.seen.length;
    const r = await inSandbox(
      [
        curl('https://api.test.example/v1/messages'),
        curl('-X POST -d x https://api.test.example/v1/messages'),
        curl('https://api.test.example/admin'),
        curl('-X DELETE https://api.test.example/v1/messages'),
        curl('https://evil.example.org/'),
        curl('-X POST https://other.test.example/'),
        curl('http://other.test.example/plain'),
      ].join('; '),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      '200',
      '200',
      '403',
      '403',
      '403',
      '403',
      '502',
    ]);
    // Only the two allowed HTTPS requests and the allowed plain one (refused upstream: no
    // plain HTTP server at that mapping) were attempted.
    assert.deepEqual(
      upstream.seen.slice(before).map((s) => `${s.method} ${s.url}`),
      ['GET /v1/messages', 'POST /v1/messages'],
    );
  });

  it('refuses, from curl in the container, an h2c upgrade, TRACE, the real token over plain HTTP, a ..; path and a method override, with nothing refused reaching the upstream', async () => {
    const before = upstream.seen.length;
    const coded = (args: string) =>
      `curl -sS -m 10 -o /dev/null -w '%{http_code} %header{x-errand-block}\\n' ${args}`;
    const r = await inSandbox(
      [
        coded('--http2 http://plain.test.example/h2c'),
        coded('-X TRACE https://git.test.example/trace'),
        coded('-H "Authorization: token $GH_TOKEN" http://plain.test.example/v1/token'),
        coded("--path-as-is 'https://api.test.example/v1/..;/admin'"),
        coded(
          "-X POST -H 'X-HTTP-Method-Override: DELETE' -d x https://api.test.example/v1/messages",
        ),
        coded('http://plain.test.example/v1/no-token'),
      ].join('; '),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.trim()),
      [
        '403 upgrade_refused',
        '403 method_refused',
        '403 cleartext_credential',
        '403 bad_path',
        '403 method_not_allowed',
        '200',
      ],
    );
    assert.deepEqual(
      upstream.seen.slice(before).map((s) => `${s.method} ${s.url}`),
      ['GET /v1/no-token'],
    );
  });

  it('reaches an allowed host named with a trailing dot (https://api.test.example./) under its one canonical name', async () => {
    const before = upstream.seen.length;
    const r = await inSandbox(
      `curl -sS -m 10 -o /dev/null -w '%{http_code}\\n' -H "Authorization: token $GH_TOKEN" https://api.test.example./v1/dot`,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '200', r.stderr);
    const [seen] = upstream.seen.slice(before);
    assert.equal(seen!.headers.host, 'api.test.example');
    assert.equal(seen!.servername, 'api.test.example');
    assert.equal(seen!.headers.authorization, `token ${REAL_TOKEN}`);
  });

  it('tells the agent which file to change in a refusal', async () => {
    const r = await inSandbox('curl -sS -m 10 https://evil.example.org/x');
    assert.match(
      r.stdout,
      /evil\.example\.org is not in \.errand\/network-allowlist\.yaml.*by pull request/,
    );
  });

  it('refuses a Host header that disagrees with the TLS server name', async () => {
    const r = await inSandbox(curl("-H 'Host: evil.example.org' https://api.test.example/v1/x"));
    assert.equal(r.stdout.trim(), '403');
  });

  it('resolves every name to the sandbox and lets no other way out: direct IP, UDP, outside DNS, IPv6, port 22, raw sockets', async () => {
    const r = await inSandbox(
      [
        'getent ahosts anything.example | head -1 | cut -d" " -f1',
        'getent ahostsv6 anything.example >/dev/null && echo v6-answer || echo no-v6',
        'ls /sys/class/net | tr "\\n" " "; echo',
        'curl -sS -m 5 http://1.1.1.1/ >/dev/null 2>&1 && echo ip-ok || echo ip-blocked',
        '(echo x > /dev/udp/8.8.8.8/53) 2>/dev/null && echo udp-sent || echo udp-blocked',
        'timeout 5 bash -c "exec 3<>/dev/tcp/api.test.example/22" 2>/dev/null && echo ssh-open || echo ssh-closed',
        'curl -sS -m 5 -6 https://[2606:4700:4700::1111]/ >/dev/null 2>&1 && echo v6-ok || echo v6-blocked',
        // Raw IP, packet (AF_PACKET = 17) and ICMP datagram sockets: refused outright.
        ...['PF_INET, SOCK_RAW, 1', '17, SOCK_RAW, 0', 'PF_INET, SOCK_DGRAM, 1'].map(
          (args) =>
            `perl -MSocket -e 'print socket(my $s, ${args}) ? "socket-open" : "socket-refused", "\\n"'`,
        ),
      ].join('; '),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      '127.0.0.2',
      'no-v6',
      'lo ',
      'ip-blocked',
      'udp-blocked',
      'ssh-closed',
      'v6-blocked',
      'socket-refused',
      'socket-refused',
      'socket-refused',
    ]);
  });

  it('refuses a CONNECT tunnel, so a refused path cannot be reached through one', async () => {
    const before = upstream.seen.length;
    const r = await inSandbox(
      'curl -sS -m 10 -p -x http://api.test.example:80 https://api.test.example/admin 2>&1; echo " rc=$?"',
    );
    assert.match(r.stdout, /403/);
    assert.equal(upstream.seen.length, before);
  });

  it("trusts the operating system's CAs for upstreams: a CA installed there needs no --upstream-ca", async () => {
    // OpenSSL's locations of the system store, pointed at one holding the upstream's CA.
    const store = join(home, 'system-store');
    mkdirSync(store, { recursive: true });
    writeFileSync(join(store, 'bundle.pem'), upstream.caPem);
    const run = (systemStore: boolean) => {
      const e: NodeJS.ProcessEnv = { ...env, FORGE_TOKEN: REAL_TOKEN };
      delete e.NODE_EXTRA_CA_CERTS;
      if (systemStore)
        Object.assign(e, { SSL_CERT_FILE: join(store, 'bundle.pem'), SSL_CERT_DIR: store });
      return cli(
        [
          'sandbox',
          'run',
          ...resolveArgs,
          '--',
          'bash',
          '-c',
          curl('https://api.test.example/v1/x'),
        ],
        {
          env: e,
          cwd: project,
          timeoutMs: 180_000,
        },
      );
    };
    const trusted = await run(true);
    assert.equal(trusted.code, 0, trusted.stderr);
    assert.equal(trusted.stdout.trim(), '200');
    const untrusted = await run(false);
    assert.equal(untrusted.code, 0, untrusted.stderr);
    assert.equal(untrusted.stdout.trim(), '502');
  });

  it('refuses an allowed name that resolves to a private address without an explicit mapping', async () => {
    const allow = join(home, 'allow-localhost.yaml');
    writeFileSync(allow, 'allow:\n  - host: localhost\n');
    const r = await inSandbox(
      `curl -sS -m 10 --resolve localhost:443:127.0.0.2 https://localhost/`,
      ['--allowlist', allow],
    );
    assert.match(r.stdout, /"code":"upstream_refused".*private address/);
  });

  it('gives the container only a surrogate, which reaches the scoped host as the real value and others as itself', async () => {
    const before = upstream.seen.length;
    const r = await inSandbox(
      'echo "$GH_TOKEN"; curl -sS -m 10 -o /dev/null -H "Authorization: token $GH_TOKEN" https://api.test.example/v1/a; curl -sS -m 10 -o /dev/null -H "Authorization: token $GH_TOKEN" https://other.test.example/b',
    );
    assert.equal(r.code, 0, r.stderr);
    const surrogate = r.stdout.trim();
    assert.notEqual(surrogate, REAL_TOKEN);
    assert.equal(surrogate.length, REAL_TOKEN.length);
    assert.ok(surrogate.startsWith('ghp_'));
    const [scoped, other] = upstream.seen.slice(before);
    assert.equal(scoped!.headers.authorization, `token ${REAL_TOKEN}`);
    assert.equal(other!.headers.authorization, `token ${surrogate}`);
  });

  it('an upstream that echoes the request hands the container back only the surrogate', async () => {
    const before = upstream.seen.length;
    const r = await inSandbox(
      'echo "$GH_TOKEN"; curl -sS -m 10 -D - -H "Authorization: token $GH_TOKEN" https://api.test.example/v1/echo',
    );
    assert.equal(r.code, 0, r.stderr);
    // The real token did reach the upstream, whose echo (headers and body) carried it back.
    assert.equal(upstream.seen[before]!.headers.authorization, `token ${REAL_TOKEN}`);
    const [surrogate, ...rest] = r.stdout.split('\n');
    const response = rest.join('\n');
    assert.ok(!r.stdout.includes(REAL_TOKEN), r.stdout);
    assert.match(response, new RegExp(`x-echo-authorization: token ${surrogate}\r\n`));
    const body = response.slice(response.indexOf('\r\n\r\n') + 4);
    assert.equal(JSON.parse(body).headers.authorization, `token ${surrogate}`);
  });

  it('lets git push with the surrogate in Basic auth, and the forge sees the real token', async () => {
    const r = await inSandbox(
      [
        'set -e',
        'cd /tmp && git init -q -b main work && cd work',
        'git -c user.name=agent -c user.email=a@e commit -q --allow-empty -m "from the sandbox"',
        'git push -q "https://x-access-token:$GH_TOKEN@git.test.example/repo.git" main 2>&1',
        'echo pushed',
      ].join('\n'),
    );
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /pushed/);
    assert.ok(pushes.length > 0);
    assert.match(
      git(join(home, 'forge', 'repo.git'), 'log', '--format=%s', 'main'),
      /from the sandbox/,
    );
  });

  it("serves Node in the container through the proxy with errand's CA trusted", async () => {
    const r = await inSandbox(
      `node -e "require('https').get('https://api.test.example/v1/node', (res) => { console.log(res.statusCode); res.resume(); }).on('error', (e) => { console.log('error', e.message); })"`,
    );
    assert.equal(r.stdout.trim(), '200', r.stderr);
  });

  it('ignores an allowlist changed only in the working tree', async () => {
    writeFileSync(
      join(project, '.errand', 'network-allowlist.yaml'),
      'allow:\n  - host: evil.example.org\n',
    );
    try {
      const r = await inSandbox(curl('https://evil.example.org/'));
      assert.equal(r.stdout.trim(), '403');
    } finally {
      git(project, 'checkout', '--', '.errand');
    }
  });

  it('writes a network log line per request', async () => {
    const log = join(home, 'net.log');
    await inSandbox(
      `${curl('https://api.test.example/v1/logged?key=s3cret')}; ${curl('https://evil.example.org/')}`,
      ['--network-log', log],
    );
    const lines = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; url: string });
    assert.deepEqual(
      lines.map((l) => [l.action, l.url]),
      [
        ['allowed', 'https://api.test.example/v1/logged?key=…'],
        ['blocked', 'https://evil.example.org/'],
      ],
    );
    assert.doesNotMatch(readFileSync(log, 'utf8'), /s3cret/);
  });
});
