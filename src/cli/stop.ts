import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import type { ServerConfig } from '../config/index.ts';
import { ErrandError } from '../util/errors.ts';
import { controlBaseUrl, controlTokenPath } from './context.ts';

/** `errand stop ID`: asks the running errand to stop a task or a conversation's tasks. */
export async function stopViaApi(config: ServerConfig, id: string): Promise<string[]> {
  if (!/^[tc]_[A-Za-z0-9]{1,62}$/.test(id)) {
    throw new ErrandError(
      'usage',
      `"${id.slice(0, 40)}" is not a task (t_…) or conversation (c_…) id. See: errand status`,
    );
  }
  let token: string;
  try {
    token = readFileSync(controlTokenPath(config), 'utf8').trim();
  } catch {
    throw new ErrandError(
      'not_running',
      'errand has not been started with this config (no control token). Start it with: errand start',
    );
  }
  const base = controlBaseUrl(config);
  const kind = id.startsWith('t_') ? 'tasks' : 'conversations';
  let res: Response;
  try {
    res = await fetch(`${base}/api/${kind}/${id}/stop`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'x-errand-user': userInfo().username },
      signal: AbortSignal.timeout(60_000),
    });
  } catch {
    throw new ErrandError(
      'not_running',
      `errand is not answering on ${base}. Is it running? Start it with: errand start`,
    );
  }
  const body = (await res.json().catch(() => ({}))) as { stopped?: string[]; message?: string };
  if (res.status === 404)
    throw new ErrandError('not_found', `${body.message ?? `no ${id}`}. See: errand status`);
  if (!res.ok)
    throw new ErrandError(
      'internal',
      `errand refused the stop (${res.status}): ${body.message ?? 'no detail'}`,
    );
  return body.stopped ?? [];
}
