/**
 * The one encoder of Server-Sent Events frames. Every byte a live stream carries is written
 * by `sseFrame`, so text from agents can only ever be data.
 *
 * The SSE parser (HTML Living Standard, "Server-sent events") ends a line at CRLF, at a
 * lone CR and at LF. Text split only on LF lets a bare CR start a field of its own:
 * `event: changed` (a reload), `retry: 86400000` (no reconnect for a day), `id: 999999`
 * (a resumption that skips every event). So data is split on all three, and the other
 * fields take only values of ours: event names from a fixed list, integers for id and retry.
 */

/** The events live pages listen to (src/dashboard/assets.ts). */
export type SseEventName = 'ev' | 'plan' | 'state' | 'changed';

export interface SseFrame {
  /** Omitted: the default `message` event, which no page listens to. */
  event?: SseEventName;
  /** The event's seq, a page's resume point (Last-Event-ID). Omitted: unchanged. */
  id?: number;
  /** The payload; each of its lines becomes one `data:` line. Omitted: no data. */
  data?: string;
  /** Reconnection delay in milliseconds. Omitted: the browser's own. */
  retry?: number;
}

const LINE_END = /\r\n|\r|\n/;

export function sseFrame(f: SseFrame): string {
  let out = '';
  if (f.retry !== undefined) out += `retry: ${wholeNumber(f.retry, 'retry')}\n`;
  if (f.id !== undefined) out += `id: ${wholeNumber(f.id, 'id')}\n`;
  if (f.event !== undefined) out += `event: ${f.event}\n`;
  if (f.data !== undefined) for (const line of f.data.split(LINE_END)) out += `data: ${line}\n`;
  return `${out}\n`;
}

/** A comment line: ignored by the parser, it keeps proxies from closing an idle stream. */
export const SSE_KEEPALIVE = ': keep-alive\n\n';

function wholeNumber(n: number, field: string): string {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new RangeError(`SSE ${field} must be a whole number`);
  return String(n);
}
