import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { App, type Logger as BoltLogger, LogLevel, SocketModeReceiver } from '@slack/bolt';
import type { RepoConfig } from '../../config/index.ts';
import type {
  AuthorizationResult,
  Channel,
  ChannelHealth,
  DeliveryContext,
  MessageSink,
  NewThread,
  PlanStep,
} from '../../gateway/ports.ts';
import type {
  Attachment,
  Conversation,
  Delivery,
  IncomingMessage,
  StoredMessage,
  Task,
} from '../../store/types.ts';
import { readDeliveryFiles } from '../../util/delivery-files.ts';
import { describeError } from '../../util/errors.ts';
import { safeFileName, uniqueFileNames } from '../../util/file-names.ts';
import type { Logger } from '../../util/logger.ts';
import { writeNewFile } from '../../util/no-follow-files.ts';
import { clip } from '../../util/text.ts';
import { escapeMrkdwn, splitMessage, toMrkdwn } from './mrkdwn.ts';
import { SlackAuthorization } from './slack-authorization.ts';

export type SlackConfig = NonNullable<RepoConfig['slack']>;

export interface SlackChannelOptions {
  logger: Logger;
  /** Where shared files are saved before the gateway copies them into the inbox. */
  attachmentsDir: string;
  /** Slack's Web API; tests point it at an emulator. Default: Slack's own. */
  apiUrl?: string;
  /** Hosts shared files may be downloaded from (with the bot token). */
  fileHosts?: string[];
  /** Shortest time between two updates of a task's progress message. */
  progressIntervalMs?: number;
}

/** What the channel keeps with a stored message to answer in its thread. */
interface SlackMeta {
  channel: string;
  ts: string;
  threadTs: string;
  team: string;
}

interface SlackEvent {
  type: string;
  subtype?: string;
  channel: string;
  channel_type?: string;
  user?: string;
  bot_id?: string;
  text?: string;
  ts: string;
  thread_ts?: string;
  team?: string;
  files?: Array<{ id: string; name?: string; url_private_download?: string; mimetype?: string }>;
}

const MODEL_PREFIX = /^\s*model:([A-Za-z0-9][A-Za-z0-9.-]{0,63})\s+/i;
/** Longer answers are sent as a file, with their start as the message. */
const MAX_INLINE = 12_000;
const MAX_FILE_BYTES = 50 * 1024 * 1024;

/**
 * The Slack channel of one repository: a Socket Mode app (no public URL), answering in
 * direct messages and in channel threads where it was mentioned. See docs/slack-setup.md.
 *
 * Events are acknowledged only once the message is stored: Bolt acknowledges events
 * before its listeners run, so the channel takes the Socket Mode envelopes itself and
 * uses Bolt for the connection and the Web API.
 */
export class SlackChannel implements Channel {
  readonly kind = 'slack' as const;
  readonly repoId: string;
  readonly #config: SlackConfig;
  readonly #o: SlackChannelOptions;
  readonly #log: Logger;
  readonly #app: App;
  readonly #auth: SlackAuthorization;
  #identityPromise: Promise<{ botUser: string; team: string }> | undefined;
  #sink: MessageSink | undefined;
  #botUser = '';
  #health: ChannelHealth = { state: 'stopped', since: Date.now() };
  readonly #progress = new Map<
    string,
    {
      ts?: string;
      lastAt: number;
      timer?: NodeJS.Timeout;
      plan: PlanStep[];
      posting?: Promise<void>;
    }
  >();
  readonly #delivered = new Set<string>();

  constructor(repoId: string, config: SlackConfig, o: SlackChannelOptions) {
    this.repoId = repoId;
    this.#config = config;
    this.#o = o;
    this.#log = o.logger.child({ repo: repoId, channel: 'slack' });
    // Built here, connected in start(): messages stored before a restart are authorized
    // (Web API lookups) before the Socket Mode connection is up.
    const logger = boltLogger(this.#log);
    const clientOptions = o.apiUrl ? { slackApiUrl: o.apiUrl } : {};
    const receiver = new SocketModeReceiver({
      appToken: config.app_token.reveal(),
      logger,
      installerOptions: { clientOptions },
    });
    this.#app = new App({ token: config.bot_token.reveal(), receiver, logger, clientOptions });
    this.#auth = new SlackAuthorization(this.#app.client);
    const socket = receiver.client;
    socket.removeAllListeners('slack_event');
    socket.on('slack_event', (args: Envelope) => void this.#onEnvelope(args));
    socket.on('connected', () => this.#setHealth('connected'));
    socket.on('reconnecting', () => this.#setHealth('retrying', 'reconnecting to Slack'));
    socket.on('disconnected', () => {
      if (this.#sink) this.#setHealth('retrying', 'disconnected from Slack');
    });
    socket.on('error', (e: Error) => this.#setHealth('retrying', describeError(e)));
  }

  async start(sink: MessageSink): Promise<void> {
    this.#sink = sink;
    this.#setHealth('starting');
    const app = this.#app;
    try {
      await this.#identity();
      await app.start();
    } catch (e) {
      this.#identityPromise = undefined;
      this.#setHealth('failed', `Slack refused to connect: ${describeError(e)}`);
      this.#log.error({ err: describeError(e) }, 'Slack app could not start');
    }
  }

  /** The bot's user id and workspace, from auth.test, asked once. */
  async #identity(): Promise<{ botUser: string; team: string }> {
    this.#identityPromise ??= this.#app.client.auth.test().then((who) => ({
      botUser: String(who.user_id ?? ''),
      team: String(who.team_id ?? ''),
    }));
    const id = await this.#identityPromise;
    this.#botUser = id.botUser;
    return id;
  }

  async stop(): Promise<void> {
    for (const p of this.#progress.values()) clearTimeout(p.timer);
    this.#progress.clear();
    const wasRunning = this.#sink !== undefined;
    this.#sink = undefined;
    if (wasRunning) await this.#app.stop().catch(() => undefined);
    this.#setHealth('stopped');
  }

  health(): ChannelHealth {
    return this.#health;
  }

  async authorize(msg: StoredMessage): Promise<AuthorizationResult> {
    const meta = msg.meta as SlackMeta | undefined;
    if (!meta) return { ok: false, reason: 'not a Slack message of this app' };
    const { team } = await this.#identity();
    const r = await this.#auth.decide(msg.sender.id, meta.channel, team, meta.team, {
      ...this.#config.authorized,
      channels: this.#config.channels,
    });
    if (!r.ok) return r;
    // Received: the person sees the message was taken.
    await this.#react(meta.channel, meta.ts, 'eyes');
    return { ok: true };
  }

  async openThread(thread: NewThread): Promise<string> {
    const app = this.#app;
    if (!thread.to) throw new Error('a Slack schedule needs `to:` (a channel id)');
    const r = await app.client.chat.postMessage({
      channel: thread.to,
      text: `*${escapeMrkdwn(thread.title)}*`,
    });
    return `${thread.to}:${r.ts}`;
  }

  async deliver(d: Delivery, ctx: DeliveryContext): Promise<void> {
    if (this.#delivered.has(d.id)) return;
    const app = this.#app;
    const meta = ctx.replyTo?.meta as SlackMeta | undefined;
    const [channel, threadTs] = splitThreadKey(
      ctx.conversation?.threadKey ?? `${meta?.channel}:${meta?.threadTs}`,
    );
    if (!channel || !threadTs) throw new Error(`delivery ${d.id} has no Slack thread`);
    let text = toMrkdwn(d.text);
    const long = text.length > MAX_INLINE;
    if (long) text = `${text.slice(0, 3000)}…\n\n_The whole answer is attached as reply.md._`;
    const { files, notAttached } = await readDeliveryFiles(d.files);
    if (notAttached.length) text += `\n\n_Not attached: ${escapeMrkdwn(notAttached.join('; '))}_`;
    if (ctx.footer) text += `\n\n_${escapeMrkdwn(ctx.footer)}_`;
    for (const part of splitMessage(text)) {
      await app.client.chat.postMessage({
        channel,
        thread_ts: threadTs,
        text: part,
        unfurl_links: false,
        unfurl_media: false,
      });
    }
    const uploads = [
      ...(long ? [{ content: d.text, filename: 'reply.md' }] : []),
      ...files.map((f) => ({ file: f.content, filename: f.name })),
    ];
    if (uploads.length > 0) {
      await app.client.filesUploadV2({
        channel_id: channel,
        thread_ts: threadTs,
        file_uploads: uploads,
      });
    }
    this.#delivered.add(d.id);
    // Only recent ids matter (a retry follows within minutes); keep the set small.
    if (this.#delivered.size > 10_000) {
      this.#delivered.delete(this.#delivered.values().next().value!);
    }
    if (meta && d.kind !== 'notice') {
      await this.#react(meta.channel, meta.ts, d.kind === 'reply' ? 'white_check_mark' : 'x');
    }
  }

  async progress(conversation: Conversation, task: Task, plan: PlanStep[]): Promise<void> {
    const interval = this.#o.progressIntervalMs ?? 1000;
    let p = this.#progress.get(task.id);
    if (!p) {
      p = { lastAt: 0, plan };
      this.#progress.set(task.id, p);
    }
    p.plan = plan;
    if (p.timer) return;
    const wait = Math.max(0, p.lastAt + interval - Date.now());
    const entry = p;
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      entry.lastAt = Date.now();
      entry.posting = (entry.posting ?? Promise.resolve())
        .then(() => this.#showPlan(conversation, entry))
        .catch((e) =>
          this.#log.warn({ task: task.id, err: describeError(e) }, 'plan update failed'),
        );
    }, wait);
  }

  async #showPlan(conversation: Conversation, p: { ts?: string; plan: PlanStep[] }): Promise<void> {
    const app = this.#app;
    const [channel, threadTs] = splitThreadKey(conversation.threadKey);
    const text = `*Plan*\n${p.plan
      .map(
        (s) =>
          `${s.status === 'completed' ? '✅' : s.status === 'in_progress' ? '▶️' : '◻️'} ${escapeMrkdwn(s.content)}`,
      )
      .join('\n')}`;
    if (p.ts) await app.client.chat.update({ channel: channel!, ts: p.ts, text });
    else
      p.ts = (
        await app.client.chat.postMessage({ channel: channel!, thread_ts: threadTs, text })
      ).ts;
  }

  // ---- receiving ----------------------------------------------------------------------------

  async #onEnvelope(args: Envelope): Promise<void> {
    if (args.type !== 'events_api') {
      await args.ack().catch(() => undefined);
      return;
    }
    try {
      await this.#onEvent(args.body.event as SlackEvent, String(args.body.team_id ?? ''));
    } catch (e) {
      // Not acknowledged: Slack delivers it again.
      this.#log.error(
        { err: describeError(e) },
        'Slack event could not be stored; not acknowledged',
      );
      return;
    }
    await args.ack().catch((e: unknown) => this.#log.warn({ err: describeError(e) }, 'ack failed'));
  }

  async #onEvent(e: SlackEvent, team: string): Promise<void> {
    const sink = this.#sink;
    if (!sink) throw new Error('the Slack channel is stopped');
    if (e.type !== 'message' && e.type !== 'app_mention') return;
    // Edits, deletions, joins and bot posts are not tasks (docs/slack-setup.md).
    if (e.subtype && e.subtype !== 'file_share') return;
    if (e.bot_id || !e.user || e.user === this.#botUser) return;
    const dm = e.channel_type === 'im' || e.channel.startsWith('D');
    const threadTs = e.thread_ts ?? e.ts;
    const threadKey = `${e.channel}:${threadTs}`;
    const mentioned = e.type === 'app_mention' || (e.text ?? '').includes(`<@${this.#botUser}>`);
    const known = await sink.hasConversation(threadKey);
    if (!dm && !mentioned && !known) return;
    const auth = this.#auth;
    let text = await this.#readableText(e.text ?? '');
    const model = MODEL_PREFIX.exec(text)?.[1];
    if (model) text = text.replace(MODEL_PREFIX, '');
    if (!dm && !known && e.thread_ts) text = await this.#withEarlierMessages(e, text);
    const msg: IncomingMessage = {
      repoId: this.repoId,
      channel: 'slack',
      // One id per Slack message: a mention arrives as both `message` and `app_mention`.
      externalId: `${e.channel}:${e.ts}`,
      threadKeys: [threadKey],
      ownThreadKey: threadKey,
      sender: { id: e.user, name: await auth.displayName(e.user) },
      text: text.trim() || '(no text)',
      subject: clip(text, 80),
      attachments: await this.#download(e),
      receivedAt: Date.now(),
      model,
      meta: { channel: e.channel, ts: e.ts, threadTs, team: e.team ?? team } satisfies SlackMeta,
    };
    const r = await sink.receive(msg);
    if (r.duplicate) this.#log.info({ message: r.messageId }, 'Slack message seen before');
  }

  /** Mentions become names; Slack's escapes become characters. */
  async #readableText(text: string): Promise<string> {
    let out = text.replace(new RegExp(`<@${this.#botUser}>\\s*`, 'g'), '');
    for (const m of [...out.matchAll(/<@([A-Z0-9]+)(\|[^>]*)?>/g)]) {
      out = out.replace(m[0], `@${await this.#auth.displayName(m[1]!)}`);
    }
    out = out.replace(/<(https?:[^|>]+)\|([^>]+)>/g, '$2 ($1)').replace(/<(https?:[^>]+)>/g, '$1');
    out = out.replace(/<!(channel|here|everyone)>/g, '@$1');
    return out.replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
  }

  /** First mentioned inside an existing thread: what was said before is context. */
  async #withEarlierMessages(e: SlackEvent, text: string): Promise<string> {
    const r = await this.#app.client.conversations.replies({
      channel: e.channel,
      ts: e.thread_ts!,
      limit: 50,
    });
    const earlier = ((r.messages ?? []) as SlackEvent[]).filter((m) => Number(m.ts) < Number(e.ts));
    if (earlier.length === 0) return text;
    const lines: string[] = [];
    for (const m of earlier) {
      const who = m.user ? await this.#auth.displayName(m.user) : 'a bot';
      lines.push(`${who}: ${await this.#readableText(m.text ?? '')}`);
    }
    return `${text}\n\n(Earlier in this thread:)\n${lines.join('\n')}`;
  }

  async #download(e: SlackEvent): Promise<Attachment[]> {
    const files = e.files ?? [];
    if (files.length === 0) return [];
    const hosts = this.#o.fileHosts ?? ['files.slack.com'];
    const dir = join(this.#o.attachmentsDir, this.repoId, `${e.channel}-${e.ts}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const out: Attachment[] = [];
    const names = uniqueFileNames(files.map((f, i) => safeFileName(f.name, `file-${i + 1}`)));
    for (const [i, f] of files.entries()) {
      const url = f.url_private_download ? new URL(f.url_private_download) : undefined;
      // The bot token goes only to Slack's own file hosts.
      if (!url || !hosts.includes(url.host)) {
        this.#log.warn({ file: f.id, host: url?.host }, 'file not from a Slack file host; skipped');
        continue;
      }
      const res = await fetch(url, {
        headers: { authorization: `Bearer ${this.#config.bot_token.reveal()}` },
        redirect: 'error',
      });
      if (!res.ok) throw new Error(`downloading a shared file failed: HTTP ${res.status}`);
      const body = Buffer.from(await res.arrayBuffer());
      if (body.length > MAX_FILE_BYTES) continue;
      const name = names[i]!;
      const path = join(dir, name);
      await writeNewFile(path, body);
      out.push({ name, path, size: body.length, contentType: f.mimetype });
    }
    return out;
  }

  async #react(channel: string, ts: string, name: string): Promise<void> {
    try {
      await this.#app.client.reactions.add({ channel, timestamp: ts, name });
    } catch (e) {
      if ((e as { data?: { error?: string } }).data?.error !== 'already_reacted') {
        this.#log.warn({ err: describeError(e) }, 'reaction failed');
      }
    }
  }

  #setHealth(state: ChannelHealth['state'], lastError?: string): void {
    this.#health = { state, since: Date.now(), ...(lastError ? { lastError } : {}) };
  }
}

interface Envelope {
  type: string;
  body: { event?: unknown; team_id?: string };
  ack: (response?: unknown) => Promise<void>;
}

function splitThreadKey(key: string): [string | undefined, string | undefined] {
  const i = key.indexOf(':');
  return i > 0 ? [key.slice(0, i), key.slice(i + 1)] : [undefined, undefined];
}

/** Bolt's and the Socket Mode client's logs go to errand's log, quietly. */
function boltLogger(log: Logger): BoltLogger {
  let level = LogLevel.WARN;
  return {
    debug: () => undefined,
    info: () => undefined,
    warn: (...m: unknown[]) => log.warn({ slack: m.map(String).join(' ') }, 'slack client'),
    error: (...m: unknown[]) => log.error({ slack: m.map(String).join(' ') }, 'slack client'),
    setLevel: (l: LogLevel) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => undefined,
  };
}
