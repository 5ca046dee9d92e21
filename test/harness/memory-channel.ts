import type {
  Attachment,
  ChannelKind,
  Conversation,
  Delivery,
  IncomingMessage,
  StoredMessage,
} from '../../src/domain/index.ts';
import type {
  AuthorizationResult,
  Channel,
  ChannelHealth,
  DeliveryContext,
  MessageSink,
  NewThread,
} from '../../src/gateway/ports.ts';

export interface SentDelivery {
  delivery: Delivery;
  conversation: Conversation | undefined;
  context?: DeliveryContext;
}

/**
 * An in-memory channel for gateway tests. It authorizes senders from a list, records
 * deliveries (a repeat of a delivery id is recorded once, as a real channel should make
 * it), and can be told to fail or hang deliveries.
 */
export class MemoryChannel implements Channel {
  readonly kind: ChannelKind;
  readonly repoId: string;
  readonly authorized: Set<string>;
  readonly sent: SentDelivery[] = [];
  readonly attempts: Delivery[] = [];
  readonly opened: NewThread[] = [];
  /** Number of upcoming deliveries that throw. */
  failNext = 0;
  /** While true, each delivery waits in `deliver` until `releaseHeld()`. */
  hold = false;
  /** Deliveries inside `deliver` now, and the most there were at once. */
  inFlight = 0;
  maxInFlight = 0;
  #held: Array<() => void> = [];
  sink: MessageSink | undefined;
  started = 0;
  stopped = 0;
  #seq = 0;
  #waiters: Array<() => void> = [];

  constructor(repoId: string, opts: { kind?: ChannelKind; authorized?: string[] } = {}) {
    this.repoId = repoId;
    this.kind = opts.kind ?? 'web';
    this.authorized = new Set(opts.authorized ?? ['alice']);
  }

  async start(sink: MessageSink): Promise<void> {
    this.sink = sink;
    this.started++;
  }

  async stop(): Promise<void> {
    this.stopped++;
  }

  health(): ChannelHealth {
    return { state: 'connected', since: 0 };
  }

  async authorize(msg: StoredMessage): Promise<AuthorizationResult> {
    return this.authorized.has(msg.sender.id)
      ? { ok: true }
      : { ok: false, reason: 'sender not authorized' };
  }

  async deliver(delivery: Delivery, context: DeliveryContext): Promise<void> {
    const { conversation } = context;
    this.attempts.push(delivery);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.hold) await new Promise<void>((resolve) => this.#held.push(resolve));
      if (this.failNext > 0) {
        this.failNext--;
        throw new Error('simulated delivery failure');
      }
      if (!this.sent.some((s) => s.delivery.id === delivery.id))
        this.sent.push({ delivery, conversation, context });
    } finally {
      this.inFlight--;
    }
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Lets the deliveries held in `deliver` go on; returns how many there were. */
  releaseHeld(): number {
    const held = this.#held.splice(0);
    for (const resolve of held) resolve();
    return held.length;
  }

  async openThread(thread: NewThread): Promise<string> {
    this.opened.push(thread);
    return `thread-${++this.#seq}`;
  }

  /** Sends a message into the gateway as this channel would. */
  async send(
    text: string,
    opts: {
      from?: string;
      thread?: string;
      id?: string;
      model?: string;
      at?: number;
      attachments?: Attachment[];
    } = {},
  ): Promise<{ messageId: string; duplicate: boolean }> {
    const id = opts.id ?? `msg-${++this.#seq}`;
    const msg: IncomingMessage = {
      repoId: this.repoId,
      channel: this.kind,
      externalId: id,
      threadKeys: opts.thread ? [opts.thread] : [],
      ownThreadKey: opts.thread ?? id,
      sender: { id: opts.from ?? 'alice' },
      text,
      attachments: opts.attachments ?? [],
      receivedAt: opts.at ?? Date.now(),
      model: opts.model,
    };
    if (!this.sink) throw new Error('channel not started');
    return await this.sink.receive(msg);
  }

  /** Resolves once `n` deliveries have been recorded. */
  async waitForSent(n: number, timeoutMs = 10_000): Promise<SentDelivery[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.sent.length < n) {
      if (Date.now() > deadline) {
        throw new Error(
          `expected ${n} deliveries, got ${this.sent.length}: ${JSON.stringify(this.sent.map((s) => s.delivery.text))}`,
        );
      }
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.sent;
  }
}
