/**
 * The client side of bench/proxy.ts: the same code measures the direct path (on the host)
 * and the sandbox path (run inside the sandbox's network namespace).
 *
 *   node bench/proxy-client.ts ADDRESS PORT SERVERNAME CA_FILE MODE N [SIZE]
 *   MODE latency: N small GETs one after another on one keep-alive connection
 *   MODE throughput: N concurrent downloads of SIZE bytes each (SIZE may end in `?random=1`)
 * Prints one JSON line.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';

const [address, port, servername, caFile, mode, n, size] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
  string,
  string?,
];
const ca = readFileSync(caFile, 'utf8');
const agent = new Agent({ keepAlive: true, maxSockets: 64, ca });

function get(path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: address, port: Number(port), servername, path, agent, headers: { host: servername } },
      (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
        });
        res.on('end', () =>
          res.statusCode === 200 ? resolve(bytes) : reject(new Error(`status ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

if (mode === 'latency') {
  await get('/small');
  const times: number[] = [];
  for (let i = 0; i < Number(n); i++) {
    const t0 = performance.now();
    await get('/small');
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      medianMs: times[Math.floor(times.length / 2)],
      p99Ms: times[Math.floor(times.length * 0.99)],
    }),
  );
} else {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const got = await Promise.all(Array.from({ length: Number(n) }, () => get(`/big/${size}`)));
  const s = (performance.now() - t0) / 1000;
  const total = got.reduce((a, b) => a + b, 0);
  const cpu = process.cpuUsage(cpu0);
  console.log(
    JSON.stringify({ mbPerS: total / 1e6 / s, total, cpuMs: (cpu.user + cpu.system) / 1000 }),
  );
}
agent.destroy();
