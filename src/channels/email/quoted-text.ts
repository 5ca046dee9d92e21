/**
 * What the person newly wrote in a reply. Mail clients put the earlier message under (or
 * above) the new text; the agent already has that conversation in its session, and a
 * repeated quote would only cost tokens and blur what is being asked now.
 */

/** Lines that introduce a quoted earlier message, per client and language. */
const ATTRIBUTION = [
  /^On .{4,200}(wrote|writes):\s*$/i, // Gmail, Apple Mail, Thunderbird (English)
  /^Am .{4,200}schrieb .{0,200}:\s*$/i, // German
  /^Le .{4,200}a écrit\s*:\s*$/i, // French
  /^El .{4,200}escribió:\s*$/i, // Spanish
  /^Il .{4,200}ha scritto:\s*$/i, // Italian
  /^Op .{4,200}schreef .{0,200}:\s*$/i, // Dutch
];
/** Lines after which everything is an earlier message (Outlook and others). */
const SEPARATOR = [
  /^-{2,}\s*Original Message\s*-{2,}\s*$/i,
  /^-{2,}\s*Ursprüngliche Nachricht\s*-{2,}\s*$/i,
  /^-{2,}\s*Message d'origine\s*-{2,}\s*$/i,
  /^_{20,}\s*$/, // Outlook's rule before the From:/Sent: block
];
const OUTLOOK_HEADER = /^\*?(From|Von|De|Da|Van):\*?\s.+/i;
const OUTLOOK_HEADER_NEXT = /^\*?(Sent|Gesendet|Envoyé|Inviato|Date|Datum|To|An|À|A):\*?\s/i;
const MOBILE_FOOTER =
  /^(Sent from my \w+|Get Outlook for \w+|Von meinem \w+ gesendet|Envoyé de mon \w+)/i;

/** The text without quoted earlier messages, trailing signature and mobile footer. */
export function stripQuoted(text: string): string {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const original = lines.join('\n').trim();
  let end = lines.length;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (/^Begin forwarded message:?$|^-{5,}\s*Forwarded message/i.test(line)) break;
    if (SEPARATOR.some((r) => r.test(line))) {
      end = i;
      break;
    }
    if (OUTLOOK_HEADER.test(line) && OUTLOOK_HEADER_NEXT.test(lines[i + 1]?.trim() ?? '')) {
      end = i;
      break;
    }
    const joined = `${line} ${lines[i + 1]?.trim() ?? ''}`.trim();
    const attributionAt = ATTRIBUTION.some((r) => r.test(line))
      ? 1
      : ATTRIBUTION.some((r) => r.test(joined))
        ? 2
        : 0;
    // An attribution only counts when a quote follows it; "On Monday I wrote:" is text.
    if (attributionAt && isQuoteStart(lines, i + attributionAt)) {
      end = i;
      break;
    }
  }
  let kept = lines.slice(0, end);
  // Interleaved answers keep their lines; quoted lines go.
  kept = kept.filter((l) => !/^\s*>/.test(l));
  kept = dropSignature(kept);
  const result = kept
    .map((l) => l.replace(/\s+$/, ''))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
  return result || original;
}

function isQuoteStart(lines: string[], from: number): boolean {
  for (let j = from; j < lines.length; j++) {
    const l = lines[j]!.trim();
    if (l === '') continue;
    return l.startsWith('>');
  }
  // Attribution as the last line: the quote was cut off by the client; still a quote.
  return true;
}

function dropSignature(lines: string[]): string[] {
  let end = lines.length;
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i]!;
    if (l === '-- ' || l === '--') {
      end = i;
      break;
    }
  }
  const out = lines.slice(0, end);
  while (out.length > 0) {
    const last = out[out.length - 1]!.trim();
    if (last === '' || MOBILE_FOOTER.test(last)) out.pop();
    else break;
  }
  return out;
}
