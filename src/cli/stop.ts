import type { ServerConfig } from '../config/index.ts';
import { ErrandError } from '../util/errors.ts';
import { postToErrand } from './control.ts';

/** `errand stop ID`: asks the running errand to stop a task or a conversation's tasks. */
export async function stopViaApi(config: ServerConfig, id: string): Promise<string[]> {
  if (!/^[tc]_[A-Za-z0-9]{1,62}$/.test(id)) {
    throw new ErrandError(
      'usage',
      `"${id.slice(0, 40)}" is not a task (t_…) or conversation (c_…) id. See: errand status`,
    );
  }
  const kind = id.startsWith('t_') ? 'tasks' : 'conversations';
  const { status, body } = await postToErrand(config, `/api/${kind}/${id}/stop`);
  if (status === 404)
    throw new ErrandError('not_found', `${body.message ?? `no ${id}`}. See: errand status`);
  if (status < 200 || status > 299)
    throw new ErrandError(
      'internal',
      `errand refused the stop (${status}): ${body.message ?? 'no detail'}`,
    );
  return (body.stopped as string[] | undefined) ?? [];
}

/**
 * `errand conversations delete ID`: asks the running errand to delete a conversation now,
 * as retention would. Fails with `not_found`, `usage` for a conversation with tasks queued
 * or running, and `not_deleted` when its folders could not be removed (it is kept).
 */
export async function deleteViaApi(config: ServerConfig, id: string): Promise<void> {
  if (!/^c_[A-Za-z0-9]{1,62}$/.test(id)) {
    throw new ErrandError(
      'usage',
      `"${id.slice(0, 40)}" is not a conversation id (c_…). List them with: errand conversations list`,
    );
  }
  const { status, body } = await postToErrand(config, `/api/conversations/${id}/delete`);
  if (status >= 200 && status <= 299) return;
  const message = body.message ?? `errand answered ${status}`;
  if (status === 404)
    throw new ErrandError('not_found', `${message}. List them with: errand conversations list`);
  if (body.error === 'busy') throw new ErrandError('conversation_busy', `${message}.`);
  if (body.error === 'not_deleted') throw new ErrandError('not_deleted', `${message}.`);
  throw new ErrandError('internal', `errand refused the delete (${status}): ${message}`);
}
