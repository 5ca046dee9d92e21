/**
 * Who may use the bot. Bots (errand itself included), deleted users, guests and people of
 * other workspaces never may; then the repository's rules, in order: every full member,
 * members of listed user groups, listed user ids; and an optional list of channels.
 * Lookups are cached for a minute, so a burst of messages costs one lookup; one event asks
 * about a bounded number of people (EventLookups).
 */
import type { WebClient } from '@slack/web-api';

export interface SlackRules {
  workspace_members: boolean;
  user_groups: string[];
  users: string[];
  channels: string[];
}

interface UserInfo {
  id: string;
  name?: string;
  real_name?: string;
  team_id?: string;
  is_bot?: boolean;
  deleted?: boolean;
  is_restricted?: boolean;
  is_ultra_restricted?: boolean;
  profile?: { display_name?: string; real_name?: string };
}

const TTL_MS = 60_000;
/** Users kept in the cache; the oldest entry goes first. */
const MAX_CACHED_USERS = 2000;
/**
 * Distinct people one event may ask Slack about: its sender, the authors of a thread's
 * earlier messages, people mentioned. A thread of many authors or a message of many
 * mentions must not turn into hundreds of users.info calls.
 */
export const MAX_USERS_PER_EVENT = 25;

/** Where user records come from: the shared cache, or one event's bounded view of it. */
export interface UserLookup {
  /** The user, or undefined when Slack knows none by that id (or the lookup is refused). */
  user(id: string): Promise<UserInfo | undefined>;
}

export class SlackAuthorization implements UserLookup {
  readonly #client: WebClient;
  readonly #users = new Map<string, { at: number; user: UserInfo | undefined }>();
  readonly #groups = new Map<string, { at: number; members: Set<string> }>();

  constructor(client: WebClient) {
    this.#client = client;
  }

  async user(id: string): Promise<UserInfo | undefined> {
    const hit = this.#users.get(id);
    if (hit && Date.now() - hit.at < TTL_MS) return hit.user;
    let user: UserInfo | undefined;
    try {
      user = (await this.#client.users.info({ user: id })).user as UserInfo | undefined;
    } catch (e) {
      if ((e as { data?: { error?: string } }).data?.error !== 'user_not_found') throw e;
    }
    this.#users.delete(id);
    this.#users.set(id, { at: Date.now(), user });
    if (this.#users.size > MAX_CACHED_USERS) this.#users.delete(this.#users.keys().next().value!);
    return user;
  }

  /** A view for one event: each person looked up once, at most `max` of them. */
  forEvent(max = MAX_USERS_PER_EVENT): EventLookups {
    return new EventLookups(this, max);
  }

  /** A name to show for a user id; the id itself when unknown. */
  async displayName(id: string, lookup: UserLookup = this): Promise<string> {
    const u = await lookup.user(id).catch(() => undefined);
    return u?.profile?.display_name || u?.real_name || u?.profile?.real_name || u?.name || id;
  }

  /**
   * `ownTeam`: errand's workspace (auth.test); `eventTeam`: the team the event names.
   * People from other organisations reach the bot through shared channels.
   */
  async decide(
    userId: string,
    channel: string,
    ownTeam: string,
    eventTeam: string,
    rules: SlackRules,
    lookup: UserLookup = this,
  ): Promise<{ ok: true } | { ok: false; reason: string }> {
    const u = await lookup.user(userId);
    if (!u) return { ok: false, reason: `unknown Slack user ${userId}` };
    if (u.is_bot) return { ok: false, reason: `${userId} is a bot` };
    if (u.deleted) return { ok: false, reason: `${userId} is deactivated` };
    if (u.is_restricted || u.is_ultra_restricted)
      return { ok: false, reason: `${userId} is a guest` };
    if (u.team_id !== ownTeam || (eventTeam && eventTeam !== ownTeam)) {
      return { ok: false, reason: `${userId} belongs to another workspace` };
    }
    if (
      rules.channels.length > 0 &&
      !channel.startsWith('D') &&
      !rules.channels.includes(channel)
    ) {
      return { ok: false, reason: `channel ${channel} is not in slack.channels` };
    }
    if (rules.workspace_members || rules.users.includes(userId)) return { ok: true };
    for (const group of rules.user_groups) {
      if ((await this.#members(group)).has(userId)) return { ok: true };
    }
    return { ok: false, reason: `${userId} is not authorized by slack.authorized` };
  }

  async #members(group: string): Promise<Set<string>> {
    const hit = this.#groups.get(group);
    if (hit && Date.now() - hit.at < TTL_MS) return hit.members;
    const r = await this.#client.usergroups.users.list({ usergroup: group });
    const members = new Set((r.users as string[] | undefined) ?? []);
    this.#groups.set(group, { at: Date.now(), members });
    return members;
  }
}

/**
 * The people one event asks about: each looked up once, and past `max` distinct people
 * none more (undefined: an unknown user, so refused, and shown by id).
 */
export class EventLookups implements UserLookup {
  readonly #auth: SlackAuthorization;
  readonly #max: number;
  readonly #seen = new Map<string, Promise<UserInfo | undefined>>();

  constructor(auth: SlackAuthorization, max: number) {
    this.#auth = auth;
    this.#max = max;
  }

  user(id: string): Promise<UserInfo | undefined> {
    let hit = this.#seen.get(id);
    if (hit) return hit;
    if (this.#seen.size >= this.#max) return Promise.resolve(undefined);
    hit = this.#auth.user(id);
    this.#seen.set(id, hit);
    return hit;
  }

  /** How many people were asked about. */
  get size(): number {
    return this.#seen.size;
  }
}
