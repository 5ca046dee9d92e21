/**
 * errand's own mailboxes: the address of every email channel of this process, so one
 * repository's channel refuses mail from another's. Two repositories whose senders' lists
 * name each other's domain would otherwise answer each other's replies forever, running an
 * agent each time (a person cc'ing both starts it: each reply goes to all addressees).
 *
 * Channels enter here when they are made, which the gateway does for every repository
 * before it starts any, so a message fetched at start already sees them all; they leave
 * when stopped. Mailboxes of other errand installations are not known here: their replies
 * carry `Auto-Submitted: auto-replied`, which automatic-mail.ts refuses.
 */

const mailboxes = new Map<object, string>();

/** Records `address` as errand's own while `owner` (a channel) runs. */
export function addOwnMailbox(owner: object, address: string): void {
  mailboxes.set(owner, canonicalMailbox(address));
}

export function removeOwnMailbox(owner: object): void {
  mailboxes.delete(owner);
}

/**
 * Whether `address` is one of errand's own mailboxes, compared case-insensitively and
 * without a `+tag` (errand+opus@… is errand@…).
 */
export function isOwnMailbox(address: string): boolean {
  const canonical = canonicalMailbox(address);
  for (const own of mailboxes.values()) if (own === canonical) return true;
  return false;
}

function canonicalMailbox(address: string): string {
  const lower = address.trim().toLowerCase();
  const at = lower.lastIndexOf('@');
  if (at < 0) return lower;
  const local = lower.slice(0, at);
  const plus = local.indexOf('+');
  return `${plus >= 0 ? local.slice(0, plus) : local}@${lower.slice(at + 1)}`;
}
