/**
 * One task's events as a readable timeline: the agent's text, each tool call with its
 * input and result, plan updates, sandbox steps. Long output is collapsed.
 */
import type { TaskEvent } from '../../domain/index.ts';
import { type Html, html } from '../html.ts';
import { clip, duration, formatCost, markdown, time } from './format.ts';

const MAX_OUTPUT = 20_000;

/**
 * The event kinds that get a class of their own. A kind is partly the agent's to choose
 * (`claude.<type>` comes from its output stream), so any other kind gets `ev-other`:
 * agent text never picks a class or an id on the page.
 */
const KIND_CLASS: Readonly<Record<string, string>> = {
  'claude.system': 'ev-claude-system',
  'claude.assistant': 'ev-claude-assistant',
  'claude.user': 'ev-claude-user',
  'claude.result': 'ev-claude-result',
  plan: 'ev-plan',
  sandbox: 'ev-sandbox',
  sandbox_image: 'ev-sandbox-image',
  agent_output: 'ev-agent-output',
  agent_recovery: 'ev-agent-recovery',
};

/** A plan step's status as the agent's TodoWrite call gave it; anything else shows as pending. */
type PlanStatus = 'pending' | 'in_progress' | 'completed';
const PLAN_MARK: Readonly<Record<PlanStatus, string>> = {
  pending: '☐',
  in_progress: '▶',
  completed: '☑',
};

interface Block {
  type?: string;
  text?: string;
  name?: string;
  input?: Record<string, unknown>;
  content?: unknown;
  is_error?: boolean;
}

export function timeline(events: TaskEvent[]): Html {
  return html`${events.map(renderEvent)}`;
}

export function renderEvent(e: TaskEvent): Html {
  const body = eventBody(e);
  if (!body) return html``;
  const kindClass = Object.hasOwn(KIND_CLASS, e.kind) ? KIND_CLASS[e.kind] : 'ev-other';
  return html`<div class="ev ${kindClass}" id="ev-${e.seq}" data-seq="${e.seq}"><time>${time(e.at).slice(11)}</time>${body}</div>`;
}

function eventBody(e: TaskEvent): Html | undefined {
  const d = (e.data ?? {}) as Record<string, unknown>;
  switch (e.kind) {
    case 'claude.system':
      return d.subtype === 'init'
        ? html`<span class="muted">Agent started${d.model ? html` (model ${String(d.model)})` : ''}</span>`
        : undefined;
    case 'claude.assistant':
      return html`${blocks(d).map((b) => assistantBlock(b))}`;
    case 'claude.user':
      return html`${blocks(d)
        .filter((b) => b.type === 'tool_result')
        .map((b) => toolResult(b))}`;
    case 'claude.result':
      return html`<div class="result">Finished${d.is_error ? ' with an error' : ''}: ${
        typeof d.num_turns === 'number' ? `${d.num_turns} turns` : ''
      }${typeof d.duration_ms === 'number' ? `, ${duration(d.duration_ms)}` : ''}${
        typeof d.total_cost_usd === 'number' ? `, ${formatCost(d.total_cost_usd)}` : ''
      }</div>`;
    case 'plan':
      return plan(d.items);
    case 'sandbox':
      return html`<span class="muted">Sandbox: ${String(d.step ?? '')}${d.detail ? ` (${String(d.detail)})` : ''}</span>`;
    case 'sandbox_image':
      return html`<details><summary>Image ${d.ok ? (d.built ? 'built' : 'from cache') : 'build failed'}${
        d.image ? html` <code>${String(d.image)}</code>` : ''
      }</summary><pre>${clipOutput(String(d.log ?? ''))}</pre></details>`;
    case 'agent_output':
      return html`<pre class="raw">${clip(String(d.line ?? ''), 2000)}</pre>`;
    default:
      return html`<details><summary>${e.kind}</summary><pre>${clipOutput(JSON.stringify(e.data, null, 2) ?? '')}</pre></details>`;
  }
}

function blocks(d: Record<string, unknown>): Block[] {
  const content = (d.message as { content?: unknown } | undefined)?.content;
  return Array.isArray(content) ? (content as Block[]) : [];
}

function assistantBlock(b: Block): Html {
  if (b.type === 'text' && b.text) return html`<div class="text">${markdown(b.text)}</div>`;
  if (b.type === 'tool_use') {
    const input = b.input ?? {};
    const summary =
      input.command ??
      input.file_path ??
      input.pattern ??
      input.url ??
      input.query ??
      input.description;
    if (b.name === 'TodoWrite') return html``;
    return html`<details class="tool"><summary><b>${b.name ?? 'tool'}</b> ${
      summary !== undefined ? html`<code>${clip(String(summary), 160)}</code>` : ''
    }</summary><pre>${clipOutput(JSON.stringify(input, null, 2))}</pre></details>`;
  }
  return html``;
}

function toolResult(b: Block): Html {
  const text =
    typeof b.content === 'string'
      ? b.content
      : Array.isArray(b.content)
        ? (b.content as Block[])
            .map((c) => (c.type === 'text' ? (c.text ?? '') : `[${c.type}]`))
            .join('\n')
        : '';
  const lines = text.split('\n').length;
  return html`<details class="tool-result${b.is_error ? ' error' : ''}"><summary>${
    b.is_error ? 'error' : 'result'
  }: ${lines} line${lines === 1 ? '' : 's'} <span class="muted">${clip(text, 100)}</span></summary><pre>${clipOutput(text)}</pre></details>`;
}

/** The plan as the task page shows it, under its heading; also sent live (`event: plan`). */
export function planSection(items: unknown): Html {
  return html`<h2>Plan</h2>${plan(items)}`;
}

function plan(items: unknown): Html {
  if (!Array.isArray(items)) return html``;
  return html`<ul class="plan">${(items as Array<{ content?: unknown; status?: unknown }>).map(
    (i) => {
      const status = planStatus(i?.status);
      return html`<li class="${status}">${PLAN_MARK[status]} ${String(i?.content ?? '')}</li>`;
    },
  )}</ul>`;
}

function planStatus(s: unknown): PlanStatus {
  return s === 'in_progress' || s === 'completed' ? s : 'pending';
}

function clipOutput(s: string): string {
  return s.length > MAX_OUTPUT
    ? `${s.slice(0, MAX_OUTPUT)}\n… (${s.length - MAX_OUTPUT} more characters)`
    : s;
}
