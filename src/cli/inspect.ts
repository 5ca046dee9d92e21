import type { ServerConfig } from '../config/index.ts';
import type { Conversation, Task } from '../domain/index.ts';
import type { Store } from '../store/index.ts';
import { ErrandError } from '../util/errors.ts';
import { formatCost, terminalSafe, terminalSafeJson, terminalSafeLine } from '../util/text.ts';
import { controlBaseUrl } from './context.ts';
import { readControlToken } from './control.ts';

/**
 * Read-only views over the store for `status` and `conversations`; safe while errand runs (WAL).
 * Everything they print that came from outside (agent text, senders, subjects, channel
 * errors) goes through terminalSafe first: stored text never drives the terminal.
 */

function ago(ms: number | undefined, now = Date.now()): string {
  if (ms === undefined) return '-';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 90) return `${s}s`;
  if (s < 5400) return `${Math.round(s / 60)}m`;
  if (s < 129_600) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

/** Cells on one line each, with controls made visible, in aligned columns. */
function table(cells: string[][]): string {
  const rows = cells.map((r) => r.map(terminalSafeLine));
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** A channel's health as the running errand reports it (`GET /api/health`). */
export interface ChannelStatus {
  repo: string;
  channel: string;
  state: string;
  lastError?: string;
  since: number;
}

/** A conversation the running errand could not delete (`GET /api/health`, `undeleted`). */
export interface UndeletedStatus {
  conversationId: string;
  repoId: string;
  since: number;
  attempts: number;
  reason: string;
}

/** What the running errand says of its health (`GET /api/health`). */
export interface RunningHealth {
  channels: ChannelStatus[];
  undeleted: UndeletedStatus[];
}

/** Health from the running errand; undefined when it does not answer. */
export async function runningHealth(config: ServerConfig): Promise<RunningHealth | undefined> {
  try {
    // None: not started yet with this config, and the request below finds nobody anyway.
    const token = readControlToken(config);
    const res = await fetch(`${controlBaseUrl(config)}/api/health`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: AbortSignal.timeout(3000),
    });
    if (!res.ok) return undefined;
    const body = (await res.json()) as Partial<RunningHealth>;
    return { channels: body.channels ?? [], undeleted: body.undeleted ?? [] };
  } catch {
    return undefined;
  }
}

/**
 * Tasks from the store (`store` undefined: none was ever written, so no tasks), and channel
 * health and undeleted conversations from the running errand when it answers (`health`
 * undefined: it did not).
 */
export async function statusReport(
  store: Store | undefined,
  json: boolean,
  health?: RunningHealth,
): Promise<string> {
  const running = store ? await store.listTasks({ states: ['running'] }) : [];
  const queued = store ? await store.listTasks({ states: ['queued'] }) : [];
  if (json)
    return terminalSafeJson({
      running,
      queued,
      channels: health?.channels ?? null,
      undeleted: health?.undeleted ?? null,
    });
  const channels = health?.channels;
  const undeleted = health?.undeleted.length
    ? `Conversations that could not be deleted (kept, tried again at every retention sweep;\nthe service log names what is left):\n${table(
        [
          ['CONVERSATION', 'REPO', 'FAILING FOR', 'ATTEMPTS', 'WHY'],
          ...health.undeleted.map((u) => [
            u.conversationId,
            u.repoId,
            ago(u.since),
            String(u.attempts),
            u.reason,
          ]),
        ],
      )}\n\n`
    : '';
  const shown = channels
    ? channels.length
      ? `${table([
          ['REPO', 'CHANNEL', 'STATE', 'SINCE', 'LAST ERROR'],
          ...channels.map((c) => [c.repo, c.channel, c.state, ago(c.since), c.lastError ?? '']),
        ])}\n\n`
      : 'No channels configured.\n\n'
    : 'errand is not running (start it with: errand start).\n\n';
  const head = `${shown}${undeleted}`;
  if (running.length + queued.length === 0) return `${head}No tasks running or queued.`;
  const rows = [['TASK', 'STATE', 'REPO', 'CONVERSATION', 'FOR']];
  for (const t of [...running, ...queued]) {
    rows.push([
      t.id,
      t.state,
      t.repoId,
      t.conversationId,
      ago(t.state === 'running' ? t.startedAt : t.createdAt),
    ]);
  }
  return `${head}${table(rows)}\n\n${running.length} running, ${queued.length} queued.`;
}

/** Recent conversations; `store` undefined: none was ever written, so there are none. */
export async function conversationsList(
  store: Store | undefined,
  opts: { repo?: string; limit: number; json: boolean },
): Promise<string> {
  const list = store ? await store.listConversations({ repoId: opts.repo, limit: opts.limit }) : [];
  if (opts.json) return terminalSafeJson(list);
  if (list.length === 0) return store ? 'No conversations.' : 'No conversations stored yet.';
  const rows = [['CONVERSATION', 'REPO', 'CHANNEL', 'UPDATED', 'TITLE']];
  for (const c of list) rows.push([c.id, c.repoId, c.channel, ago(c.updatedAt), c.title]);
  return table(rows);
}

/** One conversation; `store` undefined: none was ever written, so it is not found. */
export async function conversationShow(
  store: Store | undefined,
  id: string,
  json: boolean,
): Promise<string> {
  const c: Conversation | undefined = await store?.getConversation(id);
  if (!store || !c)
    throw new ErrandError(
      'not_found',
      `No conversation ${id}. List them with: errand conversations list`,
    );
  const tasks: Task[] = await store.listTasks({ conversationId: id });
  const messages = await store.listMessages({ conversationId: id });
  const deliveries = await store.listDeliveries({ conversationId: id });
  if (json) return terminalSafeJson({ conversation: c, tasks, messages, deliveries });
  const lines = [
    line`${c.id}  ${c.title}`,
    line`repo ${c.repoId} · channel ${c.channel} · model ${c.model ?? '-'} · session ${c.sessionId ?? '-'}`,
    '',
  ];
  const items = [
    ...messages.map((m) => ({
      at: m.receivedAt,
      text: `${line`> ${m.sender.name ?? m.sender.id} [${m.state}${m.stateReason ? `: ${m.stateReason}` : ''}]`}\n${indent(m.text)}`,
    })),
    ...deliveries.map((d) => ({
      at: d.createdAt,
      text: `${line`< errand ${d.kind} [${d.state}]`}\n${indent(d.text)}`,
    })),
  ].sort((a, b) => a.at - b.at);
  for (const item of items) lines.push(`${new Date(item.at).toISOString()} ${item.text}`);
  lines.push('', 'Tasks:');
  for (const t of tasks) {
    const cost = t.usage?.costUsd !== undefined ? ` · ${formatCost(t.usage.costUsd)}` : '';
    lines.push(line`  ${t.id}  ${t.state}${t.outcome ? ` (${t.outcome})` : ''}${cost}`);
  }
  return lines.join('\n');
}

/** A one-line template whose values are made terminal-safe, each on one line. */
function line(strings: TemplateStringsArray, ...values: string[]): string {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += terminalSafeLine(values[i]!) + strings[i + 1]!;
  return out;
}

/** A stored text, safe to print, each of its lines indented under its header. */
function indent(text: string): string {
  return terminalSafe(text)
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}
