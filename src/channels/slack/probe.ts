import { webApi } from '@slack/bolt';
import type { SlackConfig } from './slack-channel.ts';

/**
 * Asks Slack whether the bot token and the app-level token are accepted, for `errand
 * check`. Returns what failed; empty when both work.
 */
export async function probeSlack(c: SlackConfig, apiUrl?: string): Promise<string[]> {
  const options = { ...(apiUrl ? { slackApiUrl: apiUrl } : {}), retryConfig: { retries: 0 } };
  const problems: string[] = [];
  const ask = async (what: string, call: () => Promise<unknown>) => {
    try {
      await call();
    } catch (e) {
      const code = (e as { data?: { error?: string } }).data?.error;
      problems.push(`${what}: ${code ?? (e as Error).message}`);
    }
  };
  await ask('bot token', () => new webApi.WebClient(c.bot_token.reveal(), options).auth.test());
  await ask('app-level token', () =>
    new webApi.WebClient(c.app_token.reveal(), options).apps.connections.open(),
  );
  return problems;
}
