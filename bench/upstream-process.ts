/**
 * The bench's upstream in a process of its own, as a real internet host would be: sharing
 * errand's event loop would charge the upstream's TLS work to the proxy.
 *
 *   node bench/upstream-process.ts DIR NAME     prints one JSON line {httpsPort, caPem}
 */
import { startUpstream } from '../test/harness/upstream.ts';

const [dir, name] = process.argv.slice(2) as [string, string];
const upstream = await startUpstream(dir, [name]);
process.stdout.write(
  `${JSON.stringify({ httpsPort: upstream.httpsPort, caPem: upstream.caPem })}\n`,
);
// Ends with its parent: stdin is a pipe from it.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
