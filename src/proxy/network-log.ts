import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { NetworkRequest } from '../util/network-request.ts';

/** One line of the network log. */
export type NetworkLogEntry = NetworkRequest;

/** Appends entries as JSON lines to a file (per conversation, or --network-log). */
export function fileNetworkLog(path: string): (e: NetworkLogEntry) => void {
  mkdirSync(dirname(path), { recursive: true });
  return (e) => appendFileSync(path, `${JSON.stringify(e)}\n`, { mode: 0o600 });
}
