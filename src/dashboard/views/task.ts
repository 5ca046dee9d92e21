import type { Conversation, Task, TaskEvent } from '../../domain/index.ts';
import { type Html, html } from '../html.ts';
import { stopForm } from './conversation.ts';
import { cost, duration, time } from './format.ts';
import type { PageContext } from './layout.ts';
import { planSection, timeline } from './timeline.ts';

export function taskPage(
  ctx: PageContext,
  t: Task,
  conversation: Conversation | undefined,
  events: TaskEvent[],
): Html {
  const latestPlan = [...events].reverse().find((e) => e.kind === 'plan');
  const u = t.usage;
  const live = t.state === 'running' || t.state === 'queued';
  return html`<h1>Task ${t.id}</h1>
<p><span class="state ${t.state}" id="task-state">${t.state}</span> ${t.repoId}${
    conversation
      ? html` · <a href="/conversations/${conversation.id}">${conversation.title}</a>`
      : ''
  } · queued ${time(t.createdAt)}${t.startedAt ? html` · ran ${duration((t.finishedAt ?? Date.now()) - t.startedAt)}` : ''}${
    t.outcome ? html` · ${t.outcome}` : ''
  }</p>
${u ? html`<p class="muted">${cost(u)}${u.turns !== undefined ? ` · ${u.turns} turns` : ''}${u.inputTokens !== undefined ? ` · ${u.inputTokens} in / ${u.outputTokens ?? 0} out tokens` : ''}${u.webSearches ? ` · ${u.webSearches} web searches` : ''}${u.webFetches ? ` · ${u.webFetches} fetches` : ''}</p>` : ''}
${live ? stopForm(ctx, `/tasks/${t.id}/stop`, 'Stop task') : ''}
<section id="plan">${latestPlan ? planSection((latestPlan.data as { items?: unknown }).items) : ''}</section>
<h2>Timeline</h2>
<div class="timeline" id="timeline">${timeline(events)}</div>
${live ? html`<p class="muted live-note">Live: new events appear as they happen.</p>` : ''}`;
}
