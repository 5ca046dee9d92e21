/** Most messages fetched in one batch, whatever their size. */
export const MAX_BATCH_MESSAGES = 100;

/**
 * Splits unread messages (by UID, oldest first) into groups small enough together to hold
 * in memory at once: at most MAX_BATCH_MESSAGES, and at most twice `maxBytes` of mail,
 * each message counted at no more than `maxBytes` (a larger one is fetched as header only).
 * A message alone in its group may reach `maxBytes`. So a backlog of thousands of mails is
 * never held whole: each group is fetched, stored and flagged before the next is fetched.
 */
export function fetchBatches(
  uids: number[],
  sizes: Map<number, number>,
  maxBytes: number,
): number[][] {
  const out: number[][] = [];
  let current: number[] = [];
  let bytes = 0;
  for (const uid of uids) {
    const size = Math.min(sizes.get(uid) ?? 0, maxBytes);
    if (
      current.length > 0 &&
      (current.length >= MAX_BATCH_MESSAGES || bytes + size > 2 * maxBytes)
    ) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(uid);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}
