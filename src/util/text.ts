/** Short renderings shared by replies, the dashboard and channels. */

/** A duration as `42s`, `3m 5s` or `2h 10m`. */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m ${s % 60}s` : `${Math.floor(m / 60)}h ${m % 60}m`;
}

/** A cost in dollars: four decimals under a dollar, two above. */
export function formatCost(usd: number): string {
  return `$${usd.toFixed(usd < 1 ? 4 : 2)}`;
}

/** Text on one line, cut to `n` characters with an ellipsis. */
export function clip(s: string, n: number): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > n ? `${one.slice(0, n - 1)}…` : one;
}

/*
 * What a terminal acts on instead of printing: the C0 controls (ESC starts screen clears,
 * window titles, OSC 52 clipboard writes, hyperlinks), DEL, the C1 controls (U+009B is CSI
 * on its own) and a CR not followed by a newline, which returns to the start of the line
 * and prints over it. Newline and tab are kept.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching controls is the point.
const TERMINAL_CONTROL = /[\u0000-\u0008\u000b-\u000c\u000e-\u001f\u007f-\u009f]|\r(?!\n)/g;

/** A control character in caret notation, as `cat -v` shows it: ESC `^[`, DEL `^?`, CSI `M-^[`. */
function caret(c: string): string {
  const code = c.charCodeAt(0);
  if (code === 0x7f) return '^?';
  return code < 0x80
    ? `^${String.fromCharCode(code + 0x40)}`
    : `M-^${String.fromCharCode(code - 0x80 + 0x40)}`;
}

/**
 * Text from outside (agents, senders, remote servers) made safe to print on a terminal:
 * every control character but newline and tab is shown in caret notation, so none reaches
 * the terminal. CRLF becomes a newline; a lone CR shows as `^M`.
 */
export function terminalSafe(text: string): string {
  return text.replaceAll('\r\n', '\n').replace(TERMINAL_CONTROL, caret);
}

/** `terminalSafe` on one line: newlines and tabs become spaces, so a field cannot start lines of its own. */
export function terminalSafeLine(text: string): string {
  return terminalSafe(text).replace(/[\n\t]/g, ' ');
}

/**
 * A value as indented JSON that is safe to print: JSON.stringify escapes the C0 controls
 * but writes DEL and the C1 controls as they are, so those become `\u` escapes (the same
 * JSON value).
 */
export function terminalSafeJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    /[\u007f-\u009f]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
