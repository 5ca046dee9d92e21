import { randomUUID } from 'node:crypto';
import type { RepoConfig } from '../../config/index.ts';
import type { Delivery, StoredMessage } from '../../domain/index.ts';
import type {
  AuthorizationResult,
  Channel,
  ChannelHealth,
  MessageSink,
  NewThread,
} from '../../gateway/index.ts';

export interface WebSubmission {
  /** Dashboard user name (or `local` on loopback without login). */
  user: string;
  text: string;
  /** Continue this thread; absent starts a new conversation. */
  threadKey?: string;
  model?: string;
  /** Idempotency key from the client, so a resubmitted form is not run twice. */
  requestId?: string;
}

/**
 * The web channel: tasks started and continued from the dashboard or the JSON API.
 * Replies need no transport; they are in the store, where the dashboard reads them, and
 * `onDelivery` tells live views.
 */
export class WebChannel implements Channel {
  readonly kind = 'web' as const;
  readonly repoId: string;
  #config: NonNullable<RepoConfig['web']>;
  #sink: MessageSink | undefined;
  #since = Date.now();
  onDelivery?: (d: Delivery) => void;

  constructor(repoId: string, config: NonNullable<RepoConfig['web']>) {
    this.repoId = repoId;
    this.#config = config;
  }

  async start(sink: MessageSink): Promise<void> {
    this.#sink = sink;
    this.#since = Date.now();
  }

  async stop(): Promise<void> {
    this.#sink = undefined;
  }

  health(): ChannelHealth {
    return { state: this.#sink ? 'connected' : 'stopped', since: this.#since };
  }

  async authorize(msg: StoredMessage): Promise<AuthorizationResult> {
    const allowed = this.#config.authorized_users;
    if (allowed.length === 0 || allowed.includes(msg.sender.id)) return { ok: true };
    return {
      ok: false,
      reason: `web user ${msg.sender.id} is not in repos.${this.repoId}.web.authorized_users`,
    };
  }

  async deliver(delivery: Delivery): Promise<void> {
    this.onDelivery?.(delivery);
  }

  async openThread(_thread: NewThread): Promise<string> {
    return `web-${randomUUID()}`;
  }

  /** Hands a message from the dashboard to the gateway; resolves once it is stored. */
  async submit(
    s: WebSubmission,
  ): Promise<{ messageId: string; threadKey: string; duplicate: boolean }> {
    if (!this.#sink) throw new Error(`the web channel of ${this.repoId} is not running`);
    const threadKey = s.threadKey ?? `web-${randomUUID()}`;
    const externalId = s.requestId ? `web-req-${s.requestId}` : `web-${randomUUID()}`;
    const r = await this.#sink.receive({
      repoId: this.repoId,
      channel: 'web',
      externalId,
      threadKeys: [threadKey],
      ownThreadKey: threadKey,
      sender: { id: s.user },
      text: s.text,
      attachments: [],
      receivedAt: Date.now(),
      model: s.model,
    });
    return { ...r, threadKey };
  }
}
