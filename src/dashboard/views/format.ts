import MarkdownIt from 'markdown-it';
import type { TaskUsage } from '../../domain/index.ts';
import { formatCost, formatDuration } from '../../util/text.ts';
import { redactUrl } from '../../util/url-credentials.ts';
import { type Html, trusted } from '../html.ts';

export { clip, formatCost } from '../../util/text.ts';

// Raw HTML off: agent output and mail text are rendered, never trusted as markup.
const md = new MarkdownIt({ html: false, linkify: true });
md.validateLink = (url: string) => /^(https?:|mailto:)/i.test(url.trim());

// Redacted after rendering: `***` in the source would be read as emphasis. The rendered
// markup is safe to redact, as a match stops at quotes and angle brackets.
export function markdown(text: string): Html {
  return trusted(redactUrl(md.render(text)));
}

export function ago(at: number | undefined, now = Date.now()): string {
  if (!at) return '';
  const s = Math.max(0, Math.round((now - at) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86_400)}d ago`;
}

export function duration(ms: number | undefined): string {
  return ms === undefined ? '' : formatDuration(ms);
}

export function cost(u: TaskUsage | undefined): string {
  return u?.costUsd === undefined ? '' : formatCost(u.costUsd);
}

export function time(at: number | undefined): string {
  return at ? new Date(at).toISOString().replace('T', ' ').slice(0, 19) : '';
}
