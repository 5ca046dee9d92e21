import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { NetworkRequest } from '../domain/index.ts';

/** One line of the network log. */
export type NetworkLogEntry = NetworkRequest;

/**
 * Appends entries as JSON lines to a file (per conversation), or to a file descriptor the
 * caller opened and closes (--network-log).
 */
export function fileNetworkLog(target: string | number): (e: NetworkLogEntry) => void {
  if (typeof target === 'string') mkdirSync(dirname(target), { recursive: true });
  return (e) => appendFileSync(target, `${JSON.stringify(e)}\n`, { mode: 0o600 });
}
