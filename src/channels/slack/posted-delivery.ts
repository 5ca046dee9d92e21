import type { App } from '@slack/bolt';

/**
 * What of a delivery is in its Slack thread already. Slack has no idempotency key: an
 * errand killed after posting a reply and before marking it sent would post it again at
 * its next start. Each message errand posts for a delivery carries the delivery's id and
 * its part number as message metadata, so the thread itself says what went out.
 */
export interface PostedDelivery {
  /** Parts (0-based, as splitMessage numbers them) the bot posted for this delivery. */
  parts: Set<number>;
  /** Names of files the bot shared in the thread after the delivery's last posted part. */
  filesAfter: Set<string>;
}

const EVENT_TYPE = 'errand_delivery';
/** conversations.replies pages read at most: a thread past 2,000 messages is looked at in part. */
const MAX_PAGES = 10;

/** The metadata of a delivery's part: only the delivery's id and the part's number. */
export function deliveryMetadata(deliveryId: string, part: number) {
  return { event_type: EVENT_TYPE, event_payload: { delivery: deliveryId, part } };
}

interface ThreadMessage {
  ts?: string;
  bot_id?: string;
  files?: Array<{ name?: string }>;
  metadata?: { event_type?: string; event_payload?: Record<string, unknown> };
}

/**
 * Reads the thread for the bot's own messages of `deliveryId`. Only messages the bot
 * posted count: another app could post the same metadata to make errand skip a reply.
 */
export async function postedDelivery(
  client: App['client'],
  o: { channel: string; threadTs: string; deliveryId: string; botId: string },
): Promise<PostedDelivery> {
  const parts = new Set<number>();
  let lastPartTs = '';
  const ownFiles: Array<{ ts: string; names: string[] }> = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const r = await client.conversations.replies({
      channel: o.channel,
      ts: o.threadTs,
      include_all_metadata: true,
      limit: 200,
      cursor,
    });
    for (const m of (r.messages ?? []) as ThreadMessage[]) {
      if (!o.botId || m.bot_id !== o.botId || !m.ts) continue;
      const payload = m.metadata?.event_type === EVENT_TYPE ? m.metadata.event_payload : undefined;
      if (payload?.delivery === o.deliveryId && typeof payload.part === 'number') {
        parts.add(payload.part);
        if (Number(m.ts) > Number(lastPartTs || 0)) lastPartTs = m.ts;
      }
      if (m.files?.length) ownFiles.push({ ts: m.ts, names: m.files.map((f) => f.name ?? '') });
    }
    cursor = r.response_metadata?.next_cursor || undefined;
    if (!r.has_more || !cursor) break;
  }
  const filesAfter = new Set<string>();
  if (lastPartTs) {
    for (const f of ownFiles)
      if (Number(f.ts) > Number(lastPartTs)) for (const n of f.names) filesAfter.add(n);
  }
  return { parts, filesAfter };
}
