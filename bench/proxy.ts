/**
 * The network proxy against a direct connection, measured in the same run: added latency
 * of a small HTTPS request with keep-alive, and download throughput with 1 and 50
 * concurrent clients. The sandbox path is the real one: DNS-less client inside the
 * sandbox's network namespace → relay → Unix socket → proxy (TLS terminated, checked,
 * re-encrypted) → upstream on loopback. Targets (issue "Network sandbox"): under 1 ms added
 * at the median, at least 70% of direct throughput. Then the cost of the response checks:
 * the same requests and downloads without and with a task's credentials scoped to the
 * host, whose responses are then masked. Needs root (nsenter).
 *
 *   bash scripts/node.sh bench/proxy.ts [--requests N] [--mb N]
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket, connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import {
  awsSurrogatesFor,
  CertificateAuthority,
  ProxyServer,
  parseAllowlist,
  surrogatesFor,
} from '../src/proxy/index.ts';
import { SANDBOX_ADDRESS, startSandboxNetns } from '../src/sandbox/index.ts';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '2000' },
    mb: { type: 'string', default: '100' },
  },
});
const run = promisify(execFile);
const CLIENT = fileURLToPath(new URL('./proxy-client.ts', import.meta.url));
const UPSTREAM = fileURLToPath(new URL('./upstream-process.ts', import.meta.url));
const HOST = 'api.bench.example';

/** What bench/proxy-client.ts prints: latency or throughput fields. */
interface Measurement {
  medianMs?: number;
  p99Ms?: number;
  mbPerS?: number;
  total?: number;
  cpuMs?: number;
}

async function client(args: string[], netnsPid?: number): Promise<Measurement> {
  const argv = [process.execPath, CLIENT, ...args];
  const { stdout } = netnsPid
    ? await run('nsenter', [`--net=/proc/${netnsPid}/ns/net`, ...argv], { maxBuffer: 1e6 })
    : await run(argv[0]!, argv.slice(1));
  return JSON.parse(stdout) as Measurement;
}

/** CPU time a process used so far, in ms (Linux: utime + stime from /proc). */
function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

/** Runs a throughput measurement and adds the CPU ms per MB each party spent on it. */
async function withCpu(
  measure: () => Promise<Measurement>,
  upstreamPid: number,
  proxied: boolean,
): Promise<Measurement & { cpu: Record<'client' | 'upstream' | 'proxy', number> }> {
  const up0 = cpuMsOf(upstreamPid);
  const self0 = process.cpuUsage();
  const r = await measure();
  const self = process.cpuUsage(self0);
  const mb = r.total! / 1e6;
  return {
    ...r,
    cpu: {
      client: r.cpuMs! / mb,
      upstream: (cpuMsOf(upstreamPid) - up0) / mb,
      proxy: proxied ? (self.user + self.system) / 1000 / mb : 0,
    },
  };
}

const dir = mkdtempSync(join(tmpdir(), 'errand-proxy-bench-'));
try {
  const upstreamChild = spawn(process.execPath, [UPSTREAM, join(dir, 'upstream-ca'), HOST], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const [line] = (await once(upstreamChild.stdout, 'data')) as [Buffer];
  const upstream = JSON.parse(line.toString()) as { httpsPort: number; caPem: string };
  const ca = await CertificateAuthority.loadOrCreate(join(dir, 'ca'));
  writeFileSync(join(dir, 'upstream.pem'), upstream.caPem);
  writeFileSync(join(dir, 'errand.pem'), ca.certPem);
  const proxy = new ProxyServer({ ca });
  const allow = parseAllowlist(`allow:\n  - host: ${HOST}\n`);
  if (!allow.ok) throw new Error(allow.problem);
  const session = proxy.openSession({
    taskId: 'bench',
    allowlist: allow.allowlist,
    surrogates: [],
    resolve: { [HOST]: `127.0.0.1:${upstream.httpsPort}` },
    upstreamCa: upstream.caPem,
    log: () => undefined,
  });
  const netns = await startSandboxNetns(process.env);
  netns.attach(session.accept);
  const pid = Number(/\/proc\/(\d+)\//.exec(netns.path)![1]);
  // The same proxy with credentials scoped to the host, so every response from it is
  // checked for their real values (headers, and bodies as a stream): one GitHub token, and
  // a task's usual set (the agent's API key and OAuth token, a GitHub token, an AWS key
  // with a session token: six real values, the 20-character AWS key id the shortest).
  const token = (prefix: string, n: number) => prefix + randomBytes(n).toString('base64url');
  const secret = (name: string, real: string, header: string) => ({
    name,
    real,
    hosts: [HOST],
    headers: [header],
  });
  const gh = secret('GH_TOKEN', token('ghp_', 27), 'authorization');
  const masked = [
    { label: 'one GitHub token', surrogates: surrogatesFor([gh]), aws: [] },
    {
      label: 'six real values',
      surrogates: surrogatesFor([
        secret('ANTHROPIC_API_KEY', token('sk-ant-api03-', 70), 'x-api-key'),
        secret('CLAUDE_CODE_OAUTH_TOKEN', token('sk-ant-oat01-', 70), 'authorization'),
        gh,
      ]),
      aws: awsSurrogatesFor([
        {
          name: 'AWS',
          accessKeyId: `AKIA${randomBytes(8).toString('hex').toUpperCase()}`,
          secretAccessKey: randomBytes(30).toString('base64'),
          sessionToken: randomBytes(600).toString('base64'),
          hosts: [HOST],
        },
      ]),
    },
  ];
  const maskedNets = await Promise.all(
    masked.map(async (m) => {
      const s = proxy.openSession({
        taskId: `bench-${m.label}`,
        allowlist: allow.allowlist,
        surrogates: m.surrogates,
        aws: m.aws,
        resolve: { [HOST]: `127.0.0.1:${upstream.httpsPort}` },
        upstreamCa: upstream.caPem,
        log: () => undefined,
      });
      const ns = await startSandboxNetns(process.env);
      ns.attach(s.accept);
      return {
        pid: Number(/\/proc\/(\d+)\//.exec(ns.path)![1]),
        close: async () => {
          await ns.close();
          await s.close();
        },
      };
    }),
  );
  // The floor of any interceptor on Node's TLS: the same path through the relay, but the
  // proxy only decrypts and re-encrypts the bytes (no HTTP, no checks, no log).
  const bareNetns = await startSandboxNetns(process.env);
  const hostContext = await ca.contextFor(HOST);
  bareNetns.attach((raw) => {
    raw.setNoDelay(true);
    const inside = new TLSSocket(raw, { isServer: true, secureContext: hostContext });
    const outside = tlsConnect({
      host: '127.0.0.1',
      port: upstream.httpsPort,
      servername: HOST,
      ca: upstream.caPem,
    });
    inside.pipe(outside).pipe(inside);
    for (const s of [raw, inside, outside]) s.on('error', () => inside.destroy());
    inside.on('close', () => outside.destroy());
  });
  const barePid = Number(/\/proc\/(\d+)\//.exec(bareNetns.path)![1]);
  const direct = (mode: string, n: string, size?: string) =>
    client([
      '127.0.0.1',
      String(upstream.httpsPort),
      HOST,
      join(dir, 'upstream.pem'),
      mode,
      n,
      ...(size ? [size] : []),
    ]);
  const sandboxed = (mode: string, n: string, size?: string, via = pid) =>
    client(
      [SANDBOX_ADDRESS, '443', HOST, join(dir, 'errand.pem'), mode, n, ...(size ? [size] : [])],
      via,
    );

  const bytes = Number(values.mb) * 1e6;
  const lat = {
    direct: await direct('latency', values.requests!),
    proxy: await sandboxed('latency', values.requests!),
  };
  const up = upstreamChild.pid!;
  const one = {
    direct: await withCpu(() => direct('throughput', '1', String(bytes)), up, false),
    proxy: await withCpu(() => sandboxed('throughput', '1', String(bytes)), up, true),
    bare: await withCpu(() => sandboxed('throughput', '1', String(bytes), barePid), up, true),
  };
  const per50 = String(Math.floor(bytes / 50));
  const fifty = {
    direct: await direct('throughput', '50', per50),
    proxy: await sandboxed('throughput', '50', per50),
    bare: await sandboxed('throughput', '50', per50, barePid),
  };

  // Response checks: the same proxy without and with secrets scoped to the host, taken in
  // turn five times each so a drift of the machine's speed hits all alike. The proxy's
  // own CPU time (this process holds only the proxy) is the steadier figure on a shared
  // machine; wall times move with the other processes.
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const vias = [pid, ...maskedNets.map((m) => m.pid)];
  const figures = ['lat', 'latCpuUs', 'text', 'textCpu', 'random', 'randomCpu'] as const;
  type Figures = Record<(typeof figures)[number], number>;
  const checks = vias.map(() => figures.map(() => [] as number[]));
  const proxyCpuMs = async (m: () => Promise<Measurement>) => {
    const t = process.cpuUsage();
    const r = await m();
    const u = process.cpuUsage(t);
    return { r, cpuMs: (u.user + u.system) / 1000 };
  };
  for (let round = 0; round < 5; round++)
    for (const [i, via] of vias.entries()) {
      const lat = await proxyCpuMs(() => sandboxed('latency', values.requests!, undefined, via));
      const text = await proxyCpuMs(() => sandboxed('throughput', '1', String(bytes), via));
      const random = await proxyCpuMs(() => sandboxed('throughput', '1', `${bytes}?random=1`, via));
      const got = [
        lat.r.medianMs!,
        (lat.cpuMs * 1000) / (Number(values.requests) + 1),
        text.r.mbPerS!,
        text.cpuMs / (text.r.total! / 1e6),
        random.r.mbPerS!,
        random.cpuMs / (random.r.total! / 1e6),
      ];
      for (const [f, v] of got.entries()) checks[i]![f]!.push(v);
    }
  const [before, ...after] = checks.map(
    (c) => Object.fromEntries(figures.map((f, j) => [f, median(c[j]!)])) as Figures,
  );

  console.log(
    `proxy vs direct, HTTPS on loopback, ${values.requests} requests, ${values.mb} MB downloads`,
  );
  console.log(
    `  small request, keep-alive: direct median ${lat.direct.medianMs!.toFixed(3)} ms, via proxy ${lat.proxy.medianMs!.toFixed(3)} ms`,
  );
  console.log(
    `    added at the median ${(lat.proxy.medianMs! - lat.direct.medianMs!).toFixed(3)} ms (target < 1 ms)`,
  );
  console.log(
    `  1 client:   direct ${one.direct.mbPerS!.toFixed(0)} MB/s, via proxy ${one.proxy.mbPerS!.toFixed(0)} MB/s, ratio ${(one.proxy.mbPerS! / one.direct.mbPerS!).toFixed(2)} (target >= 0.70)`,
  );
  console.log(
    `  50 clients: direct ${fifty.direct.mbPerS!.toFixed(0)} MB/s, via proxy ${fifty.proxy.mbPerS!.toFixed(0)} MB/s, ratio ${(fifty.proxy.mbPerS! / fifty.direct.mbPerS!).toFixed(2)} (target >= 0.70)`,
  );
  const ratio = (a: Measurement, b: Measurement) => (a.mbPerS! / b.mbPerS!).toFixed(2);
  console.log(
    `  floor, a bare TLS relay on Node (decrypt and re-encrypt only): 1 client ${one.bare.mbPerS!.toFixed(0)} MB/s, ratio ${ratio(one.bare, one.direct)}; 50 clients ${fifty.bare.mbPerS!.toFixed(0)} MB/s, ratio ${ratio(fifty.bare, fifty.direct)}`,
  );
  console.log(
    `    errand's proxy against that floor: 1 client ${ratio(one.proxy, one.bare)}, 50 clients ${ratio(fifty.proxy, fifty.bare)}`,
  );
  // Where the CPU goes: client, upstream and proxy share this machine's cores, so the
  // proxied download cannot go faster than the cores can do all three parties' work.
  const c = one.proxy.cpu;
  const cores = availableParallelism();
  const ceiling = (cores * 1000) / (c.client + c.upstream + c.proxy);
  const ms = (n: number) => n.toFixed(2);
  console.log(
    `  CPU ms per MB, 1 client: direct: client ${ms(one.direct.cpu.client)}, upstream ${ms(one.direct.cpu.upstream)}; via proxy: client ${ms(c.client)}, upstream ${ms(c.upstream)}, proxy ${ms(c.proxy)}; bare relay ${ms(one.bare.cpu.proxy)}`,
  );
  console.log(
    `    all three on ${cores} cores: the proxied download is bounded at ${ceiling.toFixed(0)} MB/s, ratio ${(ceiling / one.direct.mbPerS!).toFixed(2)}`,
  );
  console.log(
    '  response checks: before, no secret scoped to the host; after, secrets scoped to it, so headers and bodies are masked (medians of 5 runs in turn)',
  );
  const r = (x: number, y: number) => (x / y).toFixed(2);
  const signed = (x: number, digits: number) => `${x >= 0 ? '+' : ''}${x.toFixed(digits)}`;
  const b = before!;
  console.log(
    `    before: request ${b.lat.toFixed(3)} ms (proxy CPU ${b.latCpuUs.toFixed(0)} us); 1 client text-like ${b.text.toFixed(0)} MB/s (to direct ${r(b.text, one.direct.mbPerS!)}, proxy CPU ${b.textCpu.toFixed(2)} ms/MB), random ${b.random.toFixed(0)} MB/s (${b.randomCpu.toFixed(2)} ms/MB)`,
  );
  for (const [i, a] of after.entries())
    console.log(
      `    after, ${masked[i]!.label}: request ${signed(a.lat - b.lat, 3)} ms (proxy CPU ${signed(a.latCpuUs - b.latCpuUs, 0)} us); text-like ${a.text.toFixed(0)} MB/s (to before ${r(a.text, b.text)}, proxy CPU ${signed(a.textCpu - b.textCpu, 2)} ms/MB), random ${a.random.toFixed(0)} MB/s (to before ${r(a.random, b.random)}, ${signed(a.randomCpu - b.randomCpu, 2)} ms/MB)`,
    );
  await netns.close();
  for (const m of maskedNets) await m.close();
  await bareNetns.close();
  await session.close();
  upstreamChild.stdin.end();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
