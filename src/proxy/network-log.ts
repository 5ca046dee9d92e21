import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/** One request that tried to leave a sandbox. Query values and credentials never appear. */
export interface NetworkLogEntry {
  time: string;
  action: 'allowed' | 'blocked';
  method: string;
  /** Scheme, host and path; query keys only. */
  url: string;
  status: number;
  /** Why it was blocked or failed, as a refusal code. */
  code?: string;
  /** Names of the masked secrets whose real values were put in. */
  swapped: string[];
}

/** Appends entries as JSON lines to a file (per conversation, or --network-log). */
export function fileNetworkLog(path: string): (e: NetworkLogEntry) => void {
  mkdirSync(dirname(path), { recursive: true });
  return (e) => appendFileSync(path, `${JSON.stringify(e)}\n`, { mode: 0o600 });
}
