/**
 * The address a per-client limit counts against. IPv4 as it is, also when Node reports it
 * mapped into IPv6 (a server bound to `::`). IPv6 by its first 64 bits: one host is
 * usually given a whole /64, so counting single addresses would let it take 2^64 turns.
 * Behind a reverse proxy this is the proxy's address: every user shares it.
 */
export function clientAddress(remote: string | undefined): string {
  if (!remote) return 'unknown';
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(remote);
  if (mapped) return mapped[1]!;
  if (!remote.includes(':')) return remote;
  const groups = ipv6Groups(remote.replace(/%.*$/, '').toLowerCase());
  return groups ? `${groups.slice(0, 4).join(':')}::/64` : remote;
}

/** The eight groups of an IPv6 address, each without leading zeros; undefined if malformed. */
function ipv6Groups(address: string): string[] | undefined {
  const halves = address.split('::');
  if (halves.length > 2) return undefined;
  const part = (s: string | undefined) =>
    s
      ? s.split(':').flatMap((g) => {
          // An embedded IPv4 address (64:ff9b::192.0.2.1) fills the last two groups.
          if (!g.includes('.')) return [g];
          const b = g.split('.').map(Number);
          return [((b[0]! << 8) | b[1]!).toString(16), ((b[2]! << 8) | b[3]!).toString(16)];
        })
      : [];
  const head = part(halves[0]);
  const tail = part(halves[1]);
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  if (fill < 0 || head.length + fill + tail.length !== 8) return undefined;
  return [...head, ...Array<string>(fill).fill('0'), ...tail].map(
    (g) => g.replace(/^0+(?=.)/, '') || '0',
  );
}
