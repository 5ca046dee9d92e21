/**
 * The sandbox's side of the network, run inside the task's private network namespace
 * (only loopback exists there). It answers DNS so every name leads here, and hands each
 * TCP connection on ports 80 and 443 to errand over the IPC channel it was started with:
 * errand's proxy then reads the container's socket itself, with no copy in between.
 *
 *   node relay.ts ADDRESS       (spawned by errand with an IPC channel, stdin a pipe)
 *
 * Sends {ready: PID} once listening. Nothing it receives can reach any other network: the
 * namespace has no route anywhere.
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import * as dnsPacket from 'dns-packet';

const [address] = process.argv.slice(2) as [string];
const PORTS = [80, 443];
if (!process.send) {
  process.stderr.write('relay.ts is started by errand, with an IPC channel\n');
  process.exit(2);
}
const send = process.send.bind(process);

// No namespace outlives the errand that made it. Its tie to errand is stdin, a pipe whose
// only write end errand holds and never writes to: the kernel closes it when errand ends,
// however it ends, and its end of file ends the relay. The IPC channel cannot be that tie:
// Node emits no 'disconnect' while a socket sent over it waits for errand's
// acknowledgement, so a relay whose errand was killed with a connection in flight ran on.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
process.on('disconnect', () => process.exit(0));

function relay(port: number) {
  // Paused, so no byte is read here: the socket moves to errand whole.
  return createServer({ pauseOnConnect: true }, (client) => {
    client.on('error', () => undefined);
    send({ port }, client, (e: Error | null) => {
      if (e) client.destroy();
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
send({ ready: process.pid });
process.on('SIGTERM', () => process.exit(0));
