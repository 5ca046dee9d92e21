import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

// Addresses a sandbox must not reach through an allowed name (SSRF into the host or its
// network): loopback, private, link-local (cloud metadata), CGNAT, unique-local,
// unspecified, multicast and the IPv4-mapped forms of all of them.
const blocked = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  blocked.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['64:ff9b::', 96],
] as const) {
  blocked.addSubnet(net, bits, 'ipv6');
}

export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return blocked.check(mapped[1]!, 'ipv4');
    return blocked.check(address, 'ipv6');
  }
  return true;
}

export type Resolution =
  | { ok: true; address: string; family: 4 | 6; port?: number; mapped: boolean }
  | { ok: false; reason: string };

/**
 * Where to connect for `host`. An operator's mapping (`network.resolve`, `--resolve`) is
 * used as given, private or not. Otherwise the host is resolved on the host and refused if
 * any of its addresses is private: the checked address is the one connected to, so a
 * second lookup cannot swap it (DNS rebinding). `host` is a canonical name
 * (`canonicalHost`), and so are the mappings' keys.
 */
export async function resolveUpstream(
  host: string,
  mappings: Record<string, string>,
): Promise<Resolution> {
  // Own keys only: a Host of `constructor` must not find Object.prototype's.
  const mapped = Object.hasOwn(mappings, host) ? mappings[host] : undefined;
  if (mapped) {
    const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(mapped);
    const addr = m?.[1] ?? mapped;
    const port = m?.[2] ? Number(m[2]) : undefined;
    if (isIP(addr))
      return { ok: true, address: addr, family: isIP(addr) as 4 | 6, port, mapped: true };
    const r = await lookup(addr).catch(() => undefined);
    if (!r) return { ok: false, reason: `the mapping for ${host} (${addr}) does not resolve` };
    return { ok: true, address: r.address, family: r.family as 4 | 6, port, mapped: true };
  }
  if (isIP(host)) return { ok: false, reason: 'connections to bare IP addresses are not allowed' };
  const all = await lookup(host, { all: true }).catch(() => []);
  if (all.length === 0) return { ok: false, reason: `${host} does not resolve` };
  const bad = all.find((a) => isPrivateAddress(a.address));
  if (bad) {
    return {
      ok: false,
      reason: `${host} resolves to a private address (${bad.address}); the operator can map it with network.resolve`,
    };
  }
  const first = all.find((a) => a.family === 4) ?? all[0]!;
  return { ok: true, address: first.address, family: first.family as 4 | 6, mapped: false };
}
