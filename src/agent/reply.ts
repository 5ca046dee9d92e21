/** Below this many characters a final message is a sign-off, not the answer. */
const SIGN_OFF = 200;

/**
 * The text the person gets: the CLI's result, unless that is a short sign-off ("Done!")
 * after a long answer earlier in the same task, which is then the reply (the sign-off
 * kept under it). Never empty.
 */
export function chooseReply(result: string, texts: string[]): string {
  const final = result.trim() || texts.at(-1)?.trim() || '';
  if (final.length < SIGN_OFF) {
    const longest = texts
      .slice(0, -1)
      .reduce((a, b) => (b.trim().length > a.length ? b.trim() : a), '');
    if (longest.length >= 3 * Math.max(final.length, SIGN_OFF))
      return final ? `${longest}\n\n${final}` : longest;
  }
  return (
    final ||
    'The agent finished without writing a reply. Its work is saved in the workspace; reply to ask what it did.'
  );
}
