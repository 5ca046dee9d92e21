import type { Conversation, Task } from '../../domain/index.ts';
import type { ChannelHealth, UndeletedConversation } from '../../gateway/index.ts';
import { type Html, html } from '../html.ts';
import { ago, clip, cost, duration } from './format.ts';
import { csrfField, type PageContext } from './layout.ts';

export interface TaskRow {
  task: Task;
  conversation?: Conversation;
  sender?: string;
}

export interface RepoOverview {
  id: string;
  channels: Array<{ kind: string } & ChannelHealth>;
  webEnabled: boolean;
  models: string;
  active: TaskRow[];
  recent: TaskRow[];
  conversations: Conversation[];
}

export function overviewPage(
  ctx: PageContext,
  repos: RepoOverview[],
  service: {
    running: number;
    queued: number;
    maxConcurrent: number;
    undeleted: UndeletedConversation[];
  },
): Html {
  return html`<h1>Overview</h1>
<p class="muted">${service.running} running, ${service.queued} queued, at most ${service.maxConcurrent} at once.</p>
${undeletedSection(service.undeleted)}
${repos.length === 0 ? html`<p>No repositories configured. Start errand inside a git checkout, or add <code>repos:</code> to the config.</p>` : ''}
${repos.map((r) => repoSection(ctx, r))}`;
}

/** Retention's failures: a privacy promise not kept yet, so said on the first page. */
function undeletedSection(list: UndeletedConversation[]): Html | string {
  if (!list.length) return '';
  return html`<section class="undeleted"><h2>Conversations that could not be deleted</h2>
<p class="error">Their folders are kept and tried again at every retention sweep; the service log names what is left.</p>
<ul>${list.map(
    (u) =>
      html`<li><a href="/conversations/${u.conversationId}">${u.conversationId}</a> <span class="muted">${u.repoId} · first failed ${ago(u.since)} · ${u.attempts} attempt${u.attempts === 1 ? '' : 's'}</span><br><small class="error">${u.reason}</small></li>`,
  )}</ul></section>`;
}

function repoSection(ctx: PageContext, r: RepoOverview): Html {
  return html`<section class="repo" id="repo-${r.id}">
<h2>${r.id}</h2>
<p class="channels">${r.channels.map(
    (c) =>
      html`<span class="badge ${c.state}" title="${c.lastError ?? ''}">${c.kind}: ${c.state}</span> `,
  )}${r.channels
    .filter((c) => c.lastError)
    .map((c) => html`<br><small class="error">${c.kind}: ${c.lastError}</small>`)}</p>
${r.webEnabled ? newTaskForm(ctx, r.id) : ''}
<h3>Tasks</h3>
${taskTable([...r.active, ...r.recent])}
<h3>Conversations</h3>
${
  r.conversations.length
    ? html`<ul class="conversations">${r.conversations.map(
        (c) =>
          html`<li><a href="/conversations/${c.id}">${clip(c.title, 90) || c.id}</a> <span class="muted">${c.channel} · ${ago(c.updatedAt)}</span></li>`,
      )}</ul>`
    : html`<p class="muted">None yet.</p>`
}
</section>`;
}

function newTaskForm(ctx: PageContext, repoId: string): Html {
  return html`<form method="post" action="/repos/${repoId}/tasks" class="new-task">
${csrfField(ctx)}
<label for="text-${repoId}">New task for ${repoId}</label>
<textarea id="text-${repoId}" name="text" rows="3" required placeholder="What should the agent do?"></textarea>
<div class="row"><label>Model <input name="model" placeholder="default" size="18" pattern="[A-Za-z0-9][A-Za-z0-9.\\-]{0,63}"></label>
<button type="submit">Start task</button></div>
</form>`;
}

export function taskTable(rows: TaskRow[]): Html {
  if (rows.length === 0) return html`<p class="muted">No tasks yet.</p>`;
  return html`<table class="tasks">
<thead><tr><th>Task</th><th>State</th><th>Conversation</th><th>Channel</th><th>From</th><th>Duration</th><th>Cost</th></tr></thead>
<tbody>${rows.map(
    ({ task: t, conversation: c, sender }) => html`<tr>
<td><a href="/tasks/${t.id}">${t.id}</a></td>
<td><span class="state ${t.state}">${t.state}</span></td>
<td>${c ? html`<a href="/conversations/${c.id}">${clip(c.title, 60)}</a>` : ''}</td>
<td>${c?.channel ?? ''}</td>
<td>${sender ?? ''}</td>
<td>${t.startedAt ? duration((t.finishedAt ?? Date.now()) - t.startedAt) : ago(t.createdAt)}</td>
<td>${cost(t.usage)}</td>
</tr>`,
  )}</tbody></table>`;
}
