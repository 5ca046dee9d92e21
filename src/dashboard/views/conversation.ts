import { basename } from 'node:path';
import type { Conversation, Delivery, StoredMessage, Task, TaskEvent } from '../../domain/index.ts';
import type { NetworkRequest } from '../../gateway/index.ts';
import { type Html, html } from '../html.ts';
import { ago, cost, duration, formatCost, markdown, time } from './format.ts';
import { csrfField, type PageContext } from './layout.ts';
import { timeline } from './timeline.ts';

export interface ConversationView {
  conversation: Conversation;
  messages: StoredMessage[];
  deliveries: Delivery[];
  tasks: Array<{ task: Task; events: TaskEvent[] }>;
  network: NetworkRequest[];
  canReply: boolean;
}

export function conversationPage(ctx: PageContext, v: ConversationView): Html {
  const c = v.conversation;
  const thread = [
    ...v.messages.map((m) => ({ at: m.receivedAt, html: messageItem(m) })),
    ...v.deliveries
      .filter((d) => d.kind !== 'ack')
      .map((d) => ({ at: d.createdAt, html: deliveryItem(c, d) })),
  ].sort((a, b) => a.at - b.at);
  const active = v.tasks.filter((t) => t.task.state === 'running' || t.task.state === 'queued');
  const total = v.tasks.reduce((n, t) => n + (t.task.usage?.costUsd ?? 0), 0);
  return html`<h1>${c.title || c.id}</h1>
<p class="muted">${c.repoId} · ${c.channel} · model ${c.model ?? 'default'} · started ${ago(c.createdAt)} · ${v.tasks.length} task${v.tasks.length === 1 ? '' : 's'}${total ? ` · ${formatCost(total)}` : ''}</p>
${active.length ? stopForm(ctx, `/conversations/${c.id}/stop`, 'Stop this conversation’s tasks') : ''}
<section class="thread">${thread.map((t) => t.html)}</section>
${v.canReply ? replyForm(ctx, c) : html`<p class="muted">Reply in ${c.channel} to continue this conversation.</p>`}
<h2>Tasks</h2>
${v.tasks.map((t, i) => taskDetails(t.task, t.events, i === v.tasks.length - 1))}
<h2>Network</h2>
${networkTable(v.network)}`;
}

function messageItem(m: StoredMessage): Html {
  return html`<article class="msg person" id="${m.id}">
<header><b>${m.sender.name ?? m.sender.id}</b> <span class="muted">${time(m.receivedAt)} · ${m.state}${m.stateReason ? ` (${m.stateReason})` : ''}</span></header>
${markdown(m.text)}
${m.attachments.length ? html`<p class="files">Attached: ${m.attachments.map((a) => html`<code>${a.name}</code> `)}</p>` : ''}
</article>`;
}

function deliveryItem(c: Conversation, d: Delivery): Html {
  return html`<article class="msg agent ${d.kind}" id="${d.id}">
<header><b>errand</b> <span class="muted">${time(d.createdAt)} · ${d.kind} · ${d.state}${d.state === 'failed' && d.lastError ? ` (${d.lastError})` : ''}</span></header>
${markdown(d.text)}
${
  d.files.length
    ? html`<p class="files">Files: ${d.files.map((f) => html`<a href="/conversations/${c.id}/files/${d.id}/${encodeURIComponent(basename(f))}">${basename(f)}</a> `)}</p>`
    : ''
}
</article>`;
}

function replyForm(ctx: PageContext, c: Conversation): Html {
  return html`<form method="post" action="/conversations/${c.id}/messages" class="reply">
${csrfField(ctx)}
<label for="reply">Reply</label>
<textarea id="reply" name="text" rows="3" required placeholder="Continue the conversation"></textarea>
<button type="submit">Send</button>
</form>`;
}

export function stopForm(ctx: PageContext, action: string, label: string): Html {
  return html`<form method="post" action="${action}" class="stop" data-confirm="Stop it? Work done so far stays in the workspace.">
${csrfField(ctx)}<button type="submit" class="danger">${label}</button></form>`;
}

function taskDetails(t: Task, events: TaskEvent[], open: boolean): Html {
  const u = t.usage;
  return html`<details class="task" ${open ? 'open' : ''} id="task-${t.id}">
<summary><a href="/tasks/${t.id}">${t.id}</a> <span class="state ${t.state}">${t.state}</span> ${
    t.startedAt ? duration((t.finishedAt ?? Date.now()) - t.startedAt) : ''
  } ${cost(u)}${u?.turns !== undefined ? ` · ${u.turns} turns` : ''}${
    u?.inputTokens !== undefined ? ` · ${u.inputTokens} in / ${u.outputTokens ?? 0} out tokens` : ''
  }</summary>
<div class="timeline">${timeline(events)}</div>
</details>`;
}

export function networkTable(rows: NetworkRequest[]): Html {
  if (rows.length === 0) return html`<p class="muted">No requests recorded.</p>`;
  return html`<table class="network"><thead><tr><th>Time</th><th></th><th>Method</th><th>URL</th><th>Status</th><th>Credential</th></tr></thead><tbody>${rows.map(
    (r) =>
      html`<tr class="${r.action === 'blocked' ? 'blocked' : 'allowed'}"><td>${r.time.slice(11, 19)}</td><td>${r.action}${r.code ? html` <small>${r.code}</small>` : ''}</td><td>${r.method}</td><td class="url">${r.url}</td><td>${r.status || ''}</td><td>${r.swapped.join(', ')}</td></tr>`,
  )}</tbody></table>`;
}
