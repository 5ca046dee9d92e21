import type { TaskUsage } from '../domain/index.ts';
import { formatCost, formatDuration } from '../util/text.ts';

/**
 * What errand itself says in a thread. Each notice says what happened and what the person
 * can do next; none names internals or carries error details.
 */
export const notices = {
  stoppedBeforeStart: (by: string) =>
    `Stopped by ${by} before it started. Nothing was run. Reply in this thread to try again.`,
  stopped: (by: string, partial: string) =>
    `Stopped by ${by}. Work done so far is saved in this conversation's workspace; reply in this thread to continue.${
      partial.trim() ? `\n\nLast output before the stop:\n${partial.trim()}` : ''
    }`,
  interruptedByRestart: () =>
    'errand was restarted while working on this. Work done so far is saved in the workspace; reply in this thread to continue.',
  interruptedByShutdown: () =>
    'errand was shut down while working on this. Work done so far is saved in the workspace; reply in this thread to continue.',
  internalFailure: () =>
    'errand hit an internal error while running this task and could not finish it. The operator can find details in the service log. Reply in this thread to try again.',
  acknowledged: () =>
    'Got it. An agent is working on this; its answer will arrive in this thread. Replies in this thread continue the same session.',
};

/** Where the dashboard shows a conversation. */
export function conversationUrl(baseUrl: string, conversationId: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/conversations/${encodeURIComponent(conversationId)}`;
}

/** One short line of what a task cost, for the foot of a reply. */
export function formatUsage(u: TaskUsage): string {
  const parts: string[] = [];
  if (u.costUsd !== undefined) parts.push(formatCost(u.costUsd));
  if (u.durationMs !== undefined) parts.push(formatDuration(u.durationMs));
  if (u.turns !== undefined) parts.push(`${u.turns} turn${u.turns === 1 ? '' : 's'}`);
  if (u.inputTokens !== undefined || u.outputTokens !== undefined) {
    const input = (u.inputTokens ?? 0) + (u.cacheReadTokens ?? 0) + (u.cacheCreationTokens ?? 0);
    parts.push(`${formatCount(input)} tokens in, ${formatCount(u.outputTokens ?? 0)} out`);
  }
  const tools = (u.webSearches ?? 0) + (u.webFetches ?? 0);
  if (tools > 0) parts.push(`${u.webSearches ?? 0} web searches, ${u.webFetches ?? 0} fetches`);
  return parts.join(' · ');
}

function formatCount(n: number): string {
  return n >= 10_000
    ? `${Math.round(n / 1000)}k`
    : n >= 1000
      ? `${(n / 1000).toFixed(1)}k`
      : `${n}`;
}
