/** What the dashboard's routes share: the request context and the input rules. */
import { WebChannel } from '../channels/web/index.ts';
import type { Gateway } from '../gateway/index.ts';
import type { Identity } from './access.ts';

export type Env = { Variables: { id: Identity } };

export const MODEL = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const MAX_TEXT = 100_000;

/** The repository's web channel, when it is enabled. */
export function webChannelOf(gateway: Gateway, repoId: string): WebChannel | undefined {
  return gateway.channelsOf(repoId).find((ch): ch is WebChannel => ch instanceof WebChannel);
}
