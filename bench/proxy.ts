/**
 * The network proxy against a direct connection, measured in the same run: added latency
 * of a small HTTPS request with keep-alive, and download throughput with 1 and 50
 * concurrent clients. The sandbox path is the real one: DNS-less client inside the
 * sandbox's network namespace → relay → Unix socket → proxy (TLS terminated, checked,
 * re-encrypted) → upstream on loopback. Targets (issue "Network sandbox"): under 1 ms added
 * at the median, at least 70% of direct throughput. Needs root (nsenter).
 *
 *   bash scripts/node.sh bench/proxy.ts [--requests N] [--mb N]
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import {
  CertificateAuthority,
  ProxyServer,
  parseAllowlist,
  SANDBOX_ADDRESS,
  startSandboxNetns,
} from '../src/proxy/index.ts';
import { startUpstream } from '../test/harness/upstream.ts';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '2000' },
    mb: { type: 'string', default: '100' },
  },
});
const run = promisify(execFile);
const CLIENT = fileURLToPath(new URL('./proxy-client.ts', import.meta.url));
const HOST = 'api.bench.example';

async function client(args: string[], netnsPid?: number): Promise<Record<string, number>> {
  const argv = [process.execPath, CLIENT, ...args];
  const { stdout } = netnsPid
    ? await run('nsenter', [`--net=/proc/${netnsPid}/ns/net`, ...argv], { maxBuffer: 1e6 })
    : await run(argv[0]!, argv.slice(1));
  return JSON.parse(stdout) as Record<string, number>;
}

const dir = mkdtempSync(join(tmpdir(), 'errand-proxy-bench-'));
try {
  const upstream = await startUpstream(join(dir, 'upstream-ca'), [HOST]);
  const ca = await CertificateAuthority.loadOrCreate(join(dir, 'ca'));
  writeFileSync(join(dir, 'upstream.pem'), upstream.caPem);
  writeFileSync(join(dir, 'errand.pem'), ca.certPem);
  const proxy = new ProxyServer({ ca, runDir: join(dir, 'run') });
  const allow = parseAllowlist(`allow:\n  - host: ${HOST}\n`);
  if (!allow.ok) throw new Error(allow.problem);
  const session = await proxy.openSession({
    taskId: 'bench',
    allowlist: allow.allowlist,
    surrogates: [],
    resolve: { [HOST]: `127.0.0.1:${upstream.httpsPort}` },
    upstreamCa: upstream.caPem,
    log: () => undefined,
  });
  const netns = await startSandboxNetns(session.socketBase, process.env);
  const pid = Number(/\/proc\/(\d+)\//.exec(netns.path)![1]);
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
  const sandboxed = (mode: string, n: string, size?: string) =>
    client(
      [SANDBOX_ADDRESS, '443', HOST, join(dir, 'errand.pem'), mode, n, ...(size ? [size] : [])],
      pid,
    );

  const bytes = Number(values.mb) * 1e6;
  const lat = {
    direct: await direct('latency', values.requests!),
    proxy: await sandboxed('latency', values.requests!),
  };
  const one = {
    direct: await direct('throughput', '1', String(bytes)),
    proxy: await sandboxed('throughput', '1', String(bytes)),
  };
  const per50 = String(Math.floor(bytes / 50));
  const fifty = {
    direct: await direct('throughput', '50', per50),
    proxy: await sandboxed('throughput', '50', per50),
  };

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
  await netns.close();
  await session.close();
  await upstream.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
