/**
 * A local Slack for the Slack channel's tests: the Web API methods errand uses over HTTP,
 * and Socket Mode over a WebSocket (hello, events_api envelopes, acks, disconnect). The
 * real Bolt client talks to it through `slackApiUrl`. Every Web API call is recorded, and
 * what a workspace would show (messages, reactions, files) is kept, so tests assert on
 * what a person in Slack would see. Shared files can misbehave: a large body served in
 * small paced chunks (recording how much was sent and whether the client hung up), or a
 * redirect elsewhere; every request for a file is recorded.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';

export const TEAM = 'T0TEAM';
export const BOT_USER = 'U0BOT';
export const BOT_ID = 'B0BOT';
export const APP_TOKEN = 'xapp-1-A0APP-test';
export const BOT_TOKEN = 'xoxb-test-bot-token';

export interface SlackUser {
  id: string;
  name: string;
  team_id?: string;
  is_bot?: boolean;
  deleted?: boolean;
  /** Multi-channel guest. */
  is_restricted?: boolean;
  /** Single-channel guest. */
  is_ultra_restricted?: boolean;
}

export interface SlackMessage {
  channel: string;
  ts: string;
  thread_ts?: string;
  user?: string;
  /** The author's workspace, as Slack shows it in shared channels. */
  team?: string;
  subtype?: string;
  bot_id?: string;
  text: string;
  blocks?: unknown;
  files?: Array<{ id: string; name: string }>;
  edited?: boolean;
  /** Message metadata posted with it; conversations.replies shows it only when asked. */
  metadata?: { event_type: string; event_payload: Record<string, unknown> };
}

/** A file as a test shares it. */
export interface SharedFileSpec {
  name: string;
  content?: string;
  /** The size the event states; default the content's. */
  size?: number;
  /** Served as this many bytes in paced 64 KiB chunks, with no length given. */
  streamBytes?: number;
  /** Answered with a redirect to this address instead of the file. */
  redirectTo?: string;
}

export interface StoredFile {
  name: string;
  content: Buffer;
  url: string;
  streamBytes?: number;
  redirectTo?: string;
  /** Bytes written to the client so far (streamed files). */
  sent?: number;
  /** The client closed the connection before the whole body was sent. */
  cutByClient?: boolean;
}

export interface FileRequest {
  id: string;
  token?: string;
}

export interface ApiCall {
  method: string;
  args: Record<string, unknown>;
  token?: string;
}

export class SlackEmulator {
  readonly calls: ApiCall[] = [];
  readonly messages: SlackMessage[] = [];
  readonly reactions: Array<{ channel: string; ts: string; name: string }> = [];
  /**
   * Addresses Slack's servers would fetch to unfurl a posted message: as chat.postMessage
   * documents it, media links unless `unfurl_media` is false, other links only when
   * `unfurl_links` is true. Slack links bare URLs in a message's text too.
   */
  readonly unfurled: string[] = [];
  readonly files = new Map<string, StoredFile>();
  /** Every request for a shared file's content, in order. */
  readonly fileRequests: FileRequest[] = [];
  readonly users = new Map<string, SlackUser>();
  readonly usergroups = new Map<string, string[]>();
  /** Envelope ids the client acknowledged. */
  readonly acked = new Set<string>();
  connections = 0;
  port = 0;
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  #socket: WebSocket | undefined;
  #tsCounter = 1_700_000_000;
  /** Web API methods that fail once with this error (e.g. ratelimited). */
  readonly failOnce = new Map<string, string>();

  private constructor() {
    this.#server = createServer((req, res) => {
      this.#http(req, res).catch((e) => {
        res.writeHead(500).end(String(e));
      });
    });
    this.#wss = new WebSocketServer({ noServer: true });
    this.#server.on('upgrade', (req, socket, head) => {
      this.#wss.handleUpgrade(req, socket, head, (ws) => this.#connected(ws));
    });
    this.users.set(BOT_USER, { id: BOT_USER, name: 'errand', is_bot: true, team_id: TEAM });
  }

  static async start(): Promise<SlackEmulator> {
    const e = new SlackEmulator();
    await new Promise<void>((resolve) => e.#server.listen(0, '127.0.0.1', resolve));
    e.port = (e.#server.address() as AddressInfo).port;
    return e;
  }

  get apiUrl(): string {
    return `http://127.0.0.1:${this.port}/api/`;
  }

  addUser(u: Omit<SlackUser, 'team_id'> & { team_id?: string }): SlackUser {
    const user = { team_id: TEAM, ...u };
    this.users.set(user.id, user);
    return user;
  }

  /** Makes a file downloadable, as if it was shared; returns its event object. */
  addFile(f: SharedFileSpec) {
    const id = `F${randomUUID().slice(0, 8).toUpperCase()}`;
    const url = `http://127.0.0.1:${this.port}/files-pri/${id}/${encodeURIComponent(f.name)}`;
    const content = Buffer.from(f.content ?? '');
    this.files.set(id, {
      name: f.name,
      content,
      url,
      streamBytes: f.streamBytes,
      redirectTo: f.redirectTo,
    });
    return {
      id,
      name: f.name,
      url_private_download: url,
      url_private: url,
      mimetype: 'text/plain',
      size: f.size ?? f.streamBytes ?? content.length,
    };
  }

  nextTs(): string {
    return `${++this.#tsCounter}.000100`;
  }

  get connected(): boolean {
    return this.#socket?.readyState === 1;
  }

  async waitForConnection(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.connected) {
      if (Date.now() > deadline) throw new Error('the Slack app did not connect');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /**
   * A person posts a message; Slack sends `message` (and `app_mention` when it mentions
   * the bot). Resolves with the message once every envelope was acknowledged.
   */
  async post(m: {
    user: string;
    channel: string;
    text: string;
    thread_ts?: string;
    channel_type?: 'im' | 'channel';
    files?: SharedFileSpec[];
    team?: string;
  }): Promise<SlackMessage> {
    const ts = this.nextTs();
    const files = (m.files ?? []).map((f) => this.addFile(f));
    const team = m.team ?? this.users.get(m.user)?.team_id ?? TEAM;
    const message: SlackMessage = {
      channel: m.channel,
      ts,
      thread_ts: m.thread_ts,
      user: m.user,
      team,
      text: m.text,
      files: files.map((f) => ({ id: f.id, name: f.name })),
    };
    this.messages.push(message);
    const event = {
      type: 'message',
      ...(files.length ? { subtype: 'file_share', files } : {}),
      channel: m.channel,
      channel_type: m.channel_type ?? (m.channel.startsWith('D') ? 'im' : 'channel'),
      user: m.user,
      text: m.text,
      ts,
      ...(m.thread_ts ? { thread_ts: m.thread_ts } : {}),
      team,
      event_ts: ts,
    };
    const acks = [this.send(event)];
    if (m.text.includes(`<@${BOT_USER}>`) && !m.channel.startsWith('D')) {
      acks.push(this.send({ ...event, type: 'app_mention', subtype: undefined }));
    }
    await Promise.all(acks);
    return message;
  }

  /** Sends one events_api envelope; resolves when the app acknowledged it. */
  async send(
    event: Record<string, unknown>,
    opts: { retry?: number; envelopeId?: string; ackTimeoutMs?: number } = {},
  ) {
    const envelopeId = opts.envelopeId ?? randomUUID();
    const frame = {
      envelope_id: envelopeId,
      type: 'events_api',
      accepts_response_payload: false,
      retry_attempt: opts.retry ?? 0,
      retry_reason: opts.retry ? 'timeout' : '',
      payload: {
        token: 'legacy',
        team_id: TEAM,
        api_app_id: 'A0APP',
        event,
        type: 'event_callback',
        event_id: `Ev${envelopeId.slice(0, 10)}`,
        event_time: Math.floor(Date.now() / 1000),
      },
    };
    await this.waitForConnection();
    this.#socket!.send(JSON.stringify(frame));
    const deadline = Date.now() + (opts.ackTimeoutMs ?? 15_000);
    while (!this.acked.has(envelopeId)) {
      if (Date.now() > deadline) throw new Error(`envelope ${envelopeId} was not acknowledged`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return envelopeId;
  }

  /** Asks the app to reconnect, as Slack does before recycling a connection. */
  refresh(): void {
    this.#socket?.send(JSON.stringify({ type: 'disconnect', reason: 'refresh_requested' }));
  }

  /** Drops the connection without a word, as a network failure does. */
  drop(): void {
    this.#socket?.terminate();
  }

  repliesIn(channel: string, threadTs: string): SlackMessage[] {
    return this.messages.filter(
      (m) => m.channel === channel && m.thread_ts === threadTs && m.bot_id === BOT_ID,
    );
  }

  async waitFor<T>(check: () => T | undefined | false, what: string, timeoutMs = 15_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = check();
      if (v) return v as T;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async close(): Promise<void> {
    // A clean close handshake: a client left waiting for one keeps a 30 s timer running.
    const socket = this.#socket;
    if (socket && socket.readyState <= 1) {
      const closed = new Promise((r) => socket.once('close', r));
      socket.close(1000);
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1000))]);
    }
    socket?.terminate();
    this.#wss.close();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #connected(ws: WebSocket): void {
    this.#socket?.terminate();
    this.#socket = ws;
    this.connections++;
    ws.on('message', (data) => {
      try {
        const m = JSON.parse(data.toString()) as { envelope_id?: string };
        if (m.envelope_id) this.acked.add(m.envelope_id);
      } catch {
        // not an ack
      }
    });
    ws.send(
      JSON.stringify({
        type: 'hello',
        num_connections: 1,
        debug_info: { host: 'emulator', approximate_connection_time: 3600 },
        connection_info: { app_id: 'A0APP' },
      }),
    );
  }

  async #http(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks);
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (url.pathname.startsWith('/files-pri/')) {
      const id = url.pathname.split('/')[2]!;
      this.fileRequests.push({ id, token });
      const f = this.files.get(id);
      if (!f || token !== BOT_TOKEN) return void res.writeHead(404).end('not found');
      if (f.redirectTo) return void res.writeHead(302, { location: f.redirectTo }).end();
      if (f.streamBytes) return streamSlowly(f, res);
      return void res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(f.content);
    }
    if (url.pathname.startsWith('/upload/')) {
      const id = url.pathname.split('/')[2]!;
      const f = this.files.get(id);
      if (f) f.content = raw;
      return void res.writeHead(200).end('OK');
    }
    const method = url.pathname.replace(/^\/api\//, '');
    const args = parseArgs(raw, req.headers['content-type'] ?? '');
    this.calls.push({ method, args, token });
    const reply = (body: Record<string, unknown>) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    const failure = this.failOnce.get(method);
    if (failure) {
      this.failOnce.delete(method);
      return void reply({ ok: false, error: failure });
    }
    const wantBot = method !== 'apps.connections.open';
    if (wantBot ? token !== BOT_TOKEN : token !== APP_TOKEN) {
      return void reply({ ok: false, error: 'invalid_auth' });
    }
    return void reply(this.#method(method, args));
  }

  #method(method: string, a: Record<string, unknown>): Record<string, unknown> {
    switch (method) {
      case 'auth.test':
        return {
          ok: true,
          user_id: BOT_USER,
          bot_id: BOT_ID,
          team_id: TEAM,
          team: 'Test',
          user: 'errand',
        };
      case 'apps.connections.open':
        return { ok: true, url: `ws://127.0.0.1:${this.port}/link/?ticket=${randomUUID()}` };
      case 'chat.postMessage': {
        this.unfurled.push(...wouldUnfurl(String(a.text ?? ''), a));
        const ts = this.nextTs();
        this.messages.push({
          channel: String(a.channel),
          ts,
          thread_ts: a.thread_ts ? String(a.thread_ts) : undefined,
          bot_id: BOT_ID,
          text: String(a.text ?? ''),
          blocks: a.blocks,
          metadata: typeof a.metadata === 'string' ? JSON.parse(a.metadata) : a.metadata,
        });
        return { ok: true, channel: a.channel, ts };
      }
      case 'chat.update': {
        const m = this.messages.find((x) => x.channel === a.channel && x.ts === a.ts);
        if (!m) return { ok: false, error: 'message_not_found' };
        m.text = String(a.text ?? '');
        m.blocks = a.blocks;
        m.edited = true;
        return { ok: true, channel: a.channel, ts: a.ts };
      }
      case 'reactions.add':
        this.reactions.push({
          channel: String(a.channel),
          ts: String(a.timestamp),
          name: String(a.name),
        });
        return { ok: true };
      case 'reactions.remove': {
        const i = this.reactions.findIndex(
          (r) => r.channel === a.channel && r.ts === a.timestamp && r.name === a.name,
        );
        if (i >= 0) this.reactions.splice(i, 1);
        return { ok: true };
      }
      case 'conversations.replies': {
        const withMetadata = a.include_all_metadata === true || a.include_all_metadata === 'true';
        const thread = this.messages
          .filter((m) => m.channel === a.channel && (m.ts === a.ts || m.thread_ts === a.ts))
          .map(({ metadata, ...m }) => (withMetadata && metadata ? { ...m, metadata } : m));
        return { ok: true, messages: thread, has_more: false };
      }
      case 'users.info': {
        const u = this.users.get(String(a.user));
        return u ? { ok: true, user: u } : { ok: false, error: 'user_not_found' };
      }
      case 'usergroups.users.list': {
        const members = this.usergroups.get(String(a.usergroup));
        return members ? { ok: true, users: members } : { ok: false, error: 'no_such_subteam' };
      }
      case 'files.getUploadURLExternal': {
        const id = `F${randomUUID().slice(0, 8).toUpperCase()}`;
        const name = String(a.filename);
        this.files.set(id, { name, content: Buffer.alloc(0), url: '' });
        return { ok: true, file_id: id, upload_url: `http://127.0.0.1:${this.port}/upload/${id}` };
      }
      case 'files.completeUploadExternal': {
        const files = (typeof a.files === 'string' ? JSON.parse(a.files) : a.files) as Array<{
          id: string;
          title?: string;
        }>;
        const ts = this.nextTs();
        this.messages.push({
          channel: String(a.channel_id),
          ts,
          thread_ts: a.thread_ts ? String(a.thread_ts) : undefined,
          bot_id: BOT_ID,
          text: String(a.initial_comment ?? ''),
          files: files.map((f) => ({ id: f.id, name: this.files.get(f.id)?.name ?? '' })),
        });
        return { ok: true, files: files.map((f) => ({ id: f.id })) };
      }
      case 'assistant.threads.setStatus':
      case 'assistant.threads.setTitle':
        return { ok: true };
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }
}

/**
 * Sends `streamBytes` in 64 KiB chunks, a chunk a millisecond at most and only as fast as
 * the client reads (backpressure), so what was sent tells how much the client took.
 */
function streamSlowly(f: StoredFile, res: ServerResponse): void {
  const total = f.streamBytes!;
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let sent = 0;
  f.sent = 0;
  res.on('close', () => {
    f.cutByClient = sent < total;
  });
  res.writeHead(200, { 'content-type': 'application/octet-stream' });
  const step = () => {
    if (res.destroyed) return;
    if (sent >= total) return void res.end();
    const ok = res.write(chunk);
    sent += chunk.length;
    f.sent = sent;
    if (ok) setTimeout(step, 1);
    else res.once('drain', () => setTimeout(step, 1));
  };
  step();
}

const MEDIA = /\.(png|jpe?g|gif|webp|svg|mp4|mov)$/i;

function wouldUnfurl(text: string, a: Record<string, unknown>): string[] {
  const urls = [...text.matchAll(/<(https?:\/\/[^|>]+)(?:\|[^>]*)?>|(https?:\/\/[^\s<>|]+)/g)].map(
    (m) => (m[1] ?? m[2])!,
  );
  const on = (v: unknown, byDefault: boolean) =>
    v === undefined ? byDefault : v === true || v === 'true';
  return urls.filter((u) =>
    MEDIA.test(new URL(u).pathname) ? on(a.unfurl_media, true) : on(a.unfurl_links, false),
  );
}

function parseArgs(raw: Buffer, contentType: string): Record<string, unknown> {
  const text = raw.toString();
  if (contentType.includes('application/json')) return text ? JSON.parse(text) : {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(text)) {
    out[k] = /^[[{]/.test(v) ? safeJson(v) : v;
  }
  return out;
}

function safeJson(v: string): unknown {
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
}
