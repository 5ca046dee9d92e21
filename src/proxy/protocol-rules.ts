import type { IncomingHttpHeaders } from 'node:http';

// Rules about HTTP itself, which no allowlist can loosen. Pure: the proxy gathers the facts.

/**
 * Methods refused whatever the allowlist says. A TRACE is answered with the request as the
 * upstream received it, so with the real credential the proxy put in; TRACK is IIS's alias.
 */
export const REFUSED_METHODS: ReadonlySet<string> = new Set(['TRACE', 'TRACK']);

/**
 * Headers that frameworks honour in place of the request's method (Rails, ASP.NET, Express's
 * method-override, Google's APIs): a POST carrying one is a DELETE to them, so each value is
 * checked like the method itself. They are forwarded when allowed.
 */
export const METHOD_OVERRIDE_HEADERS = [
  'x-http-method-override',
  'x-http-method',
  'x-method-override',
] as const;

/**
 * The methods a request's override headers ask for, upper case. Repeated headers arrive
 * joined by commas; each value of each header counts. Empty: no override.
 */
export function methodOverrides(headers: IncomingHttpHeaders): string[] {
  const out: string[] = [];
  for (const name of METHOD_OVERRIDE_HEADERS) {
    const v = headers[name];
    for (const line of Array.isArray(v) ? v : v === undefined ? [] : [v])
      for (const m of line.split(',')) if (m.trim()) out.push(m.trim().toUpperCase());
  }
  return out;
}

/** Whether an Upgrade header names the WebSocket protocol and nothing else (any case). */
export function isWebSocket(upgrade: string | undefined): boolean {
  return upgrade?.trim().toLowerCase() === 'websocket';
}

/** What the proxy knows of a request asking to switch protocols (`Connection: upgrade`). */
export interface UpgradeFacts {
  /** The Upgrade header as received; empty when absent. */
  protocol: string;
  websocketKey: boolean;
  websocketVersion: boolean;
}

/**
 * Why a protocol switch is refused; undefined for a WebSocket handshake, the one upgrade the
 * proxy relays. Any other (h2c above all) would turn the connection into a protocol whose
 * requests the proxy does not read, so they would go out unchecked.
 */
export function upgradeRefusal(method: string, u: UpgradeFacts): string | undefined {
  if (!isWebSocket(u.protocol))
    return `upgrading to "${u.protocol.slice(0, 40)}" is not allowed: only WebSocket (Upgrade: websocket) is relayed; speak HTTP/1.1 without Upgrade, or WebSocket`;
  if (method.toUpperCase() !== 'GET') return `a WebSocket handshake is a GET, not a ${method}`;
  if (!u.websocketKey || !u.websocketVersion)
    return 'a WebSocket handshake needs Sec-WebSocket-Key and Sec-WebSocket-Version';
  return undefined;
}

/**
 * Why a request must not go out: it would carry a real credential (`swapped` names the
 * secrets put in) over plain HTTP, readable on every network it crosses. Undefined when it
 * goes over TLS, carries none, or the operator allowed cleartext for this host, which must
 * also be one the operator mapped (`network.resolve`, a host on its own network).
 */
export function cleartextCredentialRefusal(f: {
  tls: boolean;
  host: string;
  swapped: string[];
  cleartextHosts: ReadonlySet<string>;
  mapped: boolean;
}): string | undefined {
  if (f.tls || f.swapped.length === 0) return undefined;
  if (f.mapped && f.cleartextHosts.has(f.host)) return undefined;
  return `${f.swapped.join(', ')} would be sent to ${f.host} in cleartext; use https://${f.host}/ instead (the operator can allow plain HTTP for a host mapped in network.resolve with network.cleartext_credentials)`;
}
