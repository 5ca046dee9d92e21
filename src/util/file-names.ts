/**
 * Attachment names come from strangers: they may hold paths, control characters, bidi
 * overrides or device names. These make them safe to write into the conversation's inbox.
 */

const RESERVED = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$/i;
const MAX_BYTES = 120;

/** A name safe to create in a folder; `fallback` when nothing usable is left. */
export function safeFileName(name: string | undefined, fallback: string): string {
  let n = (name ?? '').normalize('NFC');
  n = n.slice(Math.max(n.lastIndexOf('/'), n.lastIndexOf('\\')) + 1);
  // Controls, NUL and bidi/format characters (U+202E would show "exe.txt" as "txt.exe").
  n = n.replace(/[\p{Cc}\p{Cf}]/gu, '');
  n = n.replace(/[^\p{L}\p{N} ._\-()+,]/gu, '_');
  n = n.replace(/_{2,}/g, '_').replace(/\s+/g, ' ').trim();
  n = n.replace(/^[.\s]+/, '').replace(/[.\s]+$/, '');
  if (!n || RESERVED.test(n)) return fallback;
  return truncateKeepingExtension(n);
}

function truncateKeepingExtension(n: string): string {
  if (Buffer.byteLength(n) <= MAX_BYTES) return n;
  const dot = n.lastIndexOf('.');
  const ext = dot > 0 && n.length - dot <= 16 ? n.slice(dot) : '';
  let stem = ext ? n.slice(0, dot) : n;
  while (Buffer.byteLength(stem + ext) > MAX_BYTES) stem = [...stem].slice(0, -1).join('');
  return stem + ext;
}

/** Makes names unique, ignoring case: `a.txt`, `a (2).txt`, `a (3).txt`. */
export function uniqueFileNames(names: string[]): string[] {
  const taken = new Set<string>();
  return names.map((name) => {
    let candidate = name;
    const dot = name.lastIndexOf('.');
    const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
    for (let i = 2; taken.has(candidate.toLowerCase()); i++) candidate = `${stem} (${i})${ext}`;
    taken.add(candidate.toLowerCase());
    return candidate;
  });
}
