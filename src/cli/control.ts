import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import type { ServerConfig } from '../config/index.ts';
import { ErrandError } from '../util/errors.ts';
import { controlBaseUrl, controlTokenPath } from './context.ts';

/** An answer of the running errand's control API. */
export interface ControlAnswer {
  status: number;
  body: { message?: string; error?: string } & Record<string, unknown>;
}

/** The control token the running errand wrote for this config; undefined: none yet. */
export function readControlToken(config: ServerConfig): string | undefined {
  try {
    return readFileSync(controlTokenPath(config), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * POSTs to the running errand's API with the control token, as the user running the
 * command. Fails with `not_running` when errand has no token or does not answer.
 */
export async function postToErrand(config: ServerConfig, path: string): Promise<ControlAnswer> {
  const token = readControlToken(config);
  if (token === undefined) {
    throw new ErrandError(
      'not_running',
      'errand has not been started with this config (no control token). Start it with: errand start',
    );
  }
  const base = controlBaseUrl(config);
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'x-errand-user': userInfo().username },
      // A deletion walks a conversation's folders, which may be big.
      signal: AbortSignal.timeout(600_000),
    });
  } catch {
    throw new ErrandError(
      'not_running',
      `errand is not answering on ${base}. Is it running? Start it with: errand start`,
    );
  }
  return {
    status: res.status,
    body: (await res.json().catch(() => ({}))) as ControlAnswer['body'],
  };
}
