/**
 * Watches one IMAP folder and hands each unread message to a handler, one at a time. A
 * message is flagged \Seen only after the handler resolved (the message is stored): a
 * crash in between means it is fetched again, and the store recognises it.
 *
 * New mail is noticed by IDLE (imapflow idles on its own once the folder is open) and by
 * polling as a fallback. Any connection failure leads to a reconnect with backoff; the
 * state is reported through `health()`.
 */
import { ImapFlow } from 'imapflow';
import type { ChannelHealth } from '../../gateway/index.ts';
import type { Logger } from '../../util/logger.ts';
import { fetchBatches } from './fetch-batches.ts';
import { describeCertificateFailure, imapOptions, type MailServer } from './mail-servers.ts';

export interface MailboxServer extends MailServer {
  folder: string;
}

export interface FetchedMail {
  uid: number;
  size: number;
  /** The whole message, or only its header when it is larger than `maxBytes`. */
  source: Buffer;
  truncated: boolean;
}

export interface MailboxWatcherOptions {
  server: MailboxServer;
  pollMs: number;
  /** Messages larger than this are fetched as header only. */
  maxBytes: number;
  logger: Logger;
  /** Resolves once the message is stored; a rejection leaves it unread for the next pass. */
  handle: (mail: FetchedMail) => Promise<void>;
  /** First reconnect delay; doubles up to `maxBackoffMs`. */
  backoffMs?: number;
  maxBackoffMs?: number;
}

export class MailboxWatcher {
  readonly #opts: MailboxWatcherOptions;
  /** The client being connected or in use; events of any other are stale. */
  #current: ImapFlow | undefined;
  /** Set once the folder is open. */
  #client: ImapFlow | undefined;
  #health: ChannelHealth = { state: 'stopped', since: Date.now() };
  #stopped = true;
  #failures = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #pollTimer: NodeJS.Timeout | undefined;
  #draining: Promise<void> | undefined;
  #again = false;

  constructor(opts: MailboxWatcherOptions) {
    this.#opts = opts;
  }

  health(): ChannelHealth {
    return this.#health;
  }

  /** Connects in the background; resolves at once. Outages show in `health()`. */
  start(): void {
    this.#stopped = false;
    this.#setHealth('starting');
    void this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#reconnectTimer);
    clearInterval(this.#pollTimer);
    const client = this.#current;
    this.#current = undefined;
    this.#client = undefined;
    await this.#draining?.catch(() => undefined);
    if (client) await client.logout().catch(() => client.close());
    this.#setHealth('stopped');
  }

  /** Checks the folder now (also called on IDLE notifications and by the poll timer). */
  check(): void {
    if (this.#draining) {
      this.#again = true;
      return;
    }
    this.#draining = this.#drainLoop().finally(() => {
      this.#draining = undefined;
    });
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    const s = this.#opts.server;
    const client = new ImapFlow({
      ...imapOptions(s),
      // Dovecot and most servers end IDLE after 30 min; re-issue it well before.
      maxIdleTime: 5 * 60_000,
    });
    this.#current = client;
    // Without a listener an 'error' event would crash the process.
    client.on('error', (e: Error) => this.#lost(client, e));
    client.on('close', () => this.#lost(client, new Error('connection closed')));
    client.on('exists', () => this.check());
    try {
      await client.connect();
      await client.mailboxOpen(s.folder);
    } catch (e) {
      this.#lost(client, e as Error);
      client.close();
      return;
    }
    if (this.#stopped) {
      await client.logout().catch(() => client.close());
      return;
    }
    this.#client = client;
    this.#failures = 0;
    this.#setHealth('connected');
    this.#opts.logger.info({ folder: s.folder, host: s.host }, 'mailbox connected');
    clearInterval(this.#pollTimer);
    this.#pollTimer = setInterval(() => this.check(), this.#opts.pollMs);
    this.check();
  }

  #lost(client: ImapFlow, e: Error): void {
    // Each client reports its end once (error and close both fire); a replaced one not at all.
    if (this.#stopped || client !== this.#current) return;
    this.#current = undefined;
    this.#client = undefined;
    clearInterval(this.#pollTimer);
    this.#failures++;
    const authFailed = /auth|login|credentials/i.test(
      `${(e as { responseText?: string }).responseText ?? ''} ${e.message}`,
    );
    const lastError = describeCertificateFailure(e, this.#opts.server.host) ?? describeImapError(e);
    this.#setHealth(authFailed ? 'failed' : 'retrying', lastError);
    const base = this.#opts.backoffMs ?? 1000;
    const delay = Math.min(base * 2 ** (this.#failures - 1), this.#opts.maxBackoffMs ?? 60_000);
    this.#opts.logger.warn(
      { host: this.#opts.server.host, err: lastError, retryInMs: delay },
      'mailbox connection lost; reconnecting',
    );
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      void this.#connect();
    }, delay);
  }

  async #drainLoop(): Promise<void> {
    do {
      this.#again = false;
      await this.#drain();
    } while (this.#again && !this.#stopped);
    // IDLE at once rather than after imapflow's auto-idle delay: new mail is then announced
    // within the server's notify interval. The next command ends it.
    const client = this.#client;
    if (client && !this.#stopped) client.idle().catch(() => undefined);
  }

  async #drain(): Promise<void> {
    const client = this.#client;
    if (!client) return;
    try {
      const uids = ((await client.search({ seen: false }, { uid: true })) || []).sort(
        (a, b) => a - b,
      );
      if (uids.length === 0) return;
      const sizes = new Map<number, number>();
      for (const m of await client.fetchAll(uids, { uid: true, size: true }, { uid: true })) {
        sizes.set(m.uid, m.size ?? 0);
      }
      for (const batch of fetchBatches(uids, sizes, this.#opts.maxBytes)) {
        if (this.#stopped || this.#client !== client) return;
        const handled = await this.#handleBatch(client, batch, sizes);
        // One STORE per batch; a crash before it only means these are fetched again.
        if (handled.length > 0) {
          await client.messageFlagsAdd(handled, ['\\Seen'], { uid: true });
        }
      }
    } catch (e) {
      // A broken connection surfaces here and through 'close'; the reconnect drains again.
      this.#opts.logger.warn({ err: describeImapError(e as Error) }, 'mailbox check failed');
    }
  }

  async #handleBatch(
    client: ImapFlow,
    batch: number[],
    sizes: Map<number, number>,
  ): Promise<number[]> {
    const whole = batch.filter((uid) => (sizes.get(uid) ?? 0) <= this.#opts.maxBytes);
    const headerOnly = batch.filter((uid) => !whole.includes(uid));
    const fetched = [
      ...(whole.length
        ? await client.fetchAll(whole, { uid: true, source: true }, { uid: true })
        : []
      ).map((m) => ({ uid: m.uid, source: m.source, truncated: false })),
      ...(headerOnly.length
        ? await client.fetchAll(headerOnly, { uid: true, headers: true }, { uid: true })
        : []
      ).map((m) => ({ uid: m.uid, source: m.headers, truncated: true })),
    ].sort((a, b) => a.uid - b.uid);
    const handled: number[] = [];
    for (const m of fetched) {
      const source = m.source ?? Buffer.alloc(0);
      try {
        await this.#opts.handle({
          uid: m.uid,
          size: sizes.get(m.uid) ?? source.length,
          source,
          truncated: m.truncated,
        });
        handled.push(m.uid);
      } catch (e) {
        // Not stored: leave it unread, so the next pass tries again.
        this.#opts.logger.error(
          { uid: m.uid, err: (e as Error).message },
          'mail could not be stored; will retry',
        );
      }
    }
    return handled;
  }

  #setHealth(state: ChannelHealth['state'], lastError?: string): void {
    if (this.#health.state === state && this.#health.lastError === lastError) return;
    this.#health = { state, since: Date.now(), ...(lastError ? { lastError } : {}) };
  }
}

function describeImapError(e: Error): string {
  const r = e as Error & { responseText?: string; code?: string };
  return [r.code, r.responseText ?? r.message].filter(Boolean).join(': ');
}
