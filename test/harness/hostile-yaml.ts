/** YAML a hostile default branch may hold: small files that cost a parser dearly. */

/** Billion laughs: ten levels of ten aliases each expand to 10^10 strings. */
export const ALIAS_BOMB = [
  'a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]',
  ...Array.from(
    { length: 9 },
    (_, i) => `a${i + 1}: &a${i + 1} [${Array(10).fill(`*a${i}`).join(', ')}]`,
  ),
  '',
].join('\n');

/** 400 KB of `[[[…]]]`: yaml's parser would hold about 600 bytes for each byte of it. */
export const DEEP_NESTING = `limits: ${'['.repeat(200_000)}${']'.repeat(200_000)}\n`;

/** A valid sandbox file padded past 1 MiB with comments. */
export const OVERSIZED_SANDBOX_FILE = `limits:\n  timeout_seconds: 5\n${'# padding\n'.repeat(120_000)}`;
