/**
 * A tagged template that escapes every interpolated value unless it is already `Html`.
 * Pages are built from these, so text from agents, mail and configs can never become
 * markup, and credentials in URLs they quote are hidden (see redactUrl). Synchronous and
 * typed, unlike a general templating library.
 */

import { redactUrl } from '../util/url-credentials.ts';

export class Html {
  readonly value: string;
  constructor(value: string) {
    this.value = value;
  }
  toString(): string {
    return this.value;
  }
}

type Part = Html | string | number | boolean | null | undefined | Part[];

export function escapeHtml(s: string): string {
  return s
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function render(p: Part): string {
  if (p === null || p === undefined || p === false) return '';
  if (p instanceof Html) return p.value;
  if (Array.isArray(p)) return p.map(render).join('');
  return escapeHtml(redactUrl(String(p)));
}

export function html(strings: TemplateStringsArray, ...values: Part[]): Html {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new Html(out);
}

/** Markup produced by a trusted renderer (e.g. markdown-it with HTML disabled). */
export function trusted(markup: string): Html {
  return new Html(markup);
}
