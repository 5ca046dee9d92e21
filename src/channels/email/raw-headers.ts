/**
 * Reads header fields straight from the raw message. Parsers keep only the first of several
 * From fields and mail libraries rewrite odd values; authentication must see what the
 * message really carries, so it counts and reads fields here.
 */

export interface RawHeader {
  /** Field name in lower case. */
  name: string;
  /** Unfolded value, leading whitespace removed. */
  value: string;
}

/** The header fields of a raw RFC 5322 message, in order, top first. */
export function rawHeaders(raw: Buffer | string): RawHeader[] {
  const text = typeof raw === 'string' ? raw : raw.toString('latin1');
  const end = headerEnd(text);
  const block = text.slice(0, end);
  const fields: RawHeader[] = [];
  for (const line of block.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && fields.length > 0) {
      const last = fields[fields.length - 1]!;
      last.value += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    fields.push({
      name: line.slice(0, colon).trim().toLowerCase(),
      value: line.slice(colon + 1).trim(),
    });
  }
  return fields;
}

function headerEnd(text: string): number {
  const crlf = text.indexOf('\r\n\r\n');
  const lf = text.indexOf('\n\n');
  const ends = [crlf, lf].filter((i) => i >= 0);
  return ends.length > 0 ? Math.min(...ends) : text.length;
}

/** Values of every field with this name, top first. */
export function headerValues(headers: RawHeader[], name: string): string[] {
  const lower = name.toLowerCase();
  return headers.filter((h) => h.name === lower).map((h) => h.value);
}

/** Message-IDs (`<...>`) found in a header value, in order, without the angle brackets. */
export function messageIds(value: string | undefined): string[] {
  if (!value) return [];
  return [...value.matchAll(/<([^<>\s]+)>/g)].map((m) => m[1]!);
}
