/**
 * Caps on open connections, so that no client can hold them all: one in all (Node's own
 * `maxConnections`) and one per client address. A connection past either cap is closed as
 * soon as it is accepted, before a byte of it is read, as Node does for `maxConnections`.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../util/logger.ts';
import { clientAddress } from './client-address.ts';

/** One log line per this interval at most: refusals come in floods. */
const LOG_EVERY_MS = 60_000;

export function limitConnections(
  server: Server,
  o: { total: number; perAddress: number; logger: Logger },
): void {
  server.maxConnections = o.total;
  const open = new Map<string, number>();
  let refused = 0;
  let loggedAt = 0;
  const note = (address: string, cap: string) => {
    refused++;
    const now = Date.now();
    if (now - loggedAt < LOG_EVERY_MS) return;
    o.logger.warn(
      { address, cap, refused },
      'dashboard connections refused: a client holds too many (counted since the last such line)',
    );
    loggedAt = now;
    refused = 0;
  };
  // Before the HTTP server's own listener, so a refused socket is never parsed.
  server.prependListener('connection', (socket: Socket) => {
    const address = clientAddress(socket.remoteAddress);
    const n = open.get(address) ?? 0;
    if (n >= o.perAddress) {
      socket.destroy();
      note(address, `${o.perAddress} per address`);
      return;
    }
    open.set(address, n + 1);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
  });
  server.on('drop', (d) => note(clientAddress(d?.remoteAddress), `${o.total} in all`));
}
