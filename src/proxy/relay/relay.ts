/**
 * The sandbox's side of the network, run inside the task's private network namespace
 * (only loopback exists there). It answers DNS so every name leads here, and relays each
 * TCP connection on ports 80 and 443 to errand's proxy over a Unix socket on the host.
 *
 *   node relay.ts SOCKET_BASE ADDRESS     (connects to SOCKET_BASE-80.sock and -443.sock)
 *   node relay.ts - ADDRESS               (SOCKET_BASE comes later, as a line on stdin)
 *
 * Prints "ready PID" once listening. Nothing it receives can reach any other network: the
 * namespace has no route anywhere.
 */
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';
import * as dnsPacket from 'dns-packet';

const [socketArg, address] = process.argv.slice(2) as [string, string];
const PORTS = [80, 443];

// errand holds the other end of stdin: a started relay can wait for its task there (the
// socket base arrives as the first line), and end-of-file means errand is gone.
let stdinText = '';
const socketBase = new Promise<string>((resolve) => {
  if (socketArg !== '-') resolve(socketArg);
  process.stdin.on('data', (d: Buffer) => {
    stdinText += d.toString();
    const nl = stdinText.indexOf('\n');
    if (nl >= 0) resolve(stdinText.slice(0, nl).trim());
  });
});
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));

function relay(port: number) {
  return createServer((client) => {
    // Unread data waits in the client socket until it is piped.
    void socketBase.then((base) => {
      const upstream = connect(`${base}-${port}.sock`);
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
  });
}

/** A for any name: this address. Anything else (AAAA included): no records. */
function answer(query: Buffer): Buffer | undefined {
  let q: dnsPacket.Packet;
  try {
    q = dnsPacket.decode(query);
  } catch {
    return undefined;
  }
  const questions = q.questions ?? [];
  const answers: dnsPacket.Answer[] = questions
    .filter((x) => x.type === 'A')
    .map((x) => ({ type: 'A', name: x.name, ttl: 5, class: 'IN', data: address }));
  return dnsPacket.encode({
    type: 'response',
    id: q.id,
    flags:
      dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    questions,
    answers,
  });
}

const servers = PORTS.map((p) => ({ port: p, server: relay(p) }));
await Promise.all(
  servers.map(
    ({ port, server }) => new Promise<void>((resolve) => server.listen(port, address, resolve)),
  ),
);

const udp = createSocket('udp4');
udp.on('message', (msg, rinfo) => {
  const a = answer(msg);
  if (a) udp.send(a, rinfo.port, rinfo.address);
});
await new Promise<void>((resolve) => udp.bind(53, address, resolve));

// DNS over TCP (large answers, some resolvers): length-prefixed messages.
const tcpDns = createServer((c) => {
  let buf = Buffer.alloc(0);
  c.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
      const len = buf.readUInt16BE(0);
      const a = answer(buf.subarray(2, 2 + len));
      buf = buf.subarray(2 + len);
      if (a) {
        const out = Buffer.alloc(2 + a.length);
        out.writeUInt16BE(a.length, 0);
        a.copy(out, 2);
        c.write(out);
      }
    }
  });
  c.on('error', () => undefined);
});
await new Promise<void>((resolve) => tcpDns.listen(53, address, resolve));

// The pid names the namespace for podman (`--network ns:/proc/PID/ns/net`); there is no
// pid namespace in between, so it is the host's pid.
process.stdout.write(`ready ${process.pid}\n`);
process.on('SIGTERM', () => process.exit(0));
