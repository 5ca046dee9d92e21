import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { RepoConfig } from '../../config/index.ts';
import type { Attachment, Delivery, IncomingMessage, StoredMessage } from '../../domain/index.ts';
import type {
  AuthorizationResult,
  Channel,
  ChannelHealth,
  DeliveryContext,
  MessageSink,
  NewThread,
} from '../../gateway/index.ts';
import { readDeliveryFiles } from '../../util/delivery-files.ts';
import { safeFileName, uniqueFileNames } from '../../util/file-names.ts';
import type { Logger } from '../../util/logger.ts';
import { writeNewFile } from '../../util/no-follow-files.ts';
import { automaticMail } from './automatic-mail.ts';
import { type IncomingMail, parseIncomingMail, unreadableMail } from './incoming-mail.ts';
import type { MailServer } from './mail-servers.ts';
import { type FetchedMail, MailboxWatcher } from './mailbox-watcher.ts';
import { addOwnMailbox, isOwnMailbox, removeOwnMailbox } from './own-mailboxes.ts';
import { rawHeaders } from './raw-headers.ts';
import { renderReply } from './render-reply.ts';
import { type DnsResolver, isAuthorizedSender, verifySender } from './sender-auth.ts';
import { SmtpSender } from './smtp-sender.ts';
import {
  conversationTag,
  errandMessageId,
  replySubject,
  taggedSubject,
  tagKey,
} from './threading.ts';

export type EmailConfig = NonNullable<RepoConfig['email']>;

/** What the channel keeps with each stored message to answer it in its thread. */
interface EmailMeta {
  auth: 'pass' | 'fail';
  authReason?: string;
  messageId: string;
  references: string[];
  subject: string;
  /** Other addressees of the message, copied on the reply (reply-all). */
  others: string[];
  /**
   * Why the mail was sent by a machine (an auto-reply, a bounce, list mail, another of
   * errand's own mailboxes); set: it starts nothing.
   */
  automatic?: string;
  /** Size in bytes when the message was over the limit and not read. */
  tooLarge?: number;
  /** Recipient of a scheduled task's thread (from the schedule's `to`). */
  to?: string;
}

export interface EmailChannelOptions {
  logger: Logger;
  /** Where attachments are saved before the gateway copies them into the inbox. */
  attachmentsDir: string;
  /** DNS for DKIM verification (tests); default: `dns_servers` or the system's. */
  resolver?: DnsResolver;
  /** First reconnect delay of the mailbox connection. */
  reconnectBackoffMs?: number;
}

const MAX_ATTACHMENTS = 50;

/**
 * The email channel of one repository: IMAP in (IDLE, polling fallback), SMTP out. Every
 * message is authenticated (DMARC with aligned DKIM) before anything else reads it; see
 * docs/email-setup.md.
 */
export class EmailChannel implements Channel {
  readonly kind = 'email' as const;
  readonly acknowledgesNewConversations = true;
  readonly repoId: string;
  readonly #config: EmailConfig;
  readonly #opts: EmailChannelOptions;
  readonly #smtp: SmtpSender;
  #watcher: MailboxWatcher | undefined;
  #sink: MessageSink | undefined;
  readonly #domain: string;
  /** Largest message read; larger ones get a notice instead of an agent. */
  readonly #maxBytes: number;

  constructor(repoId: string, config: EmailConfig, opts: EmailChannelOptions) {
    this.repoId = repoId;
    this.#config = config;
    this.#opts = opts;
    this.#maxBytes = Math.round(config.max_message_mb * 1024 * 1024);
    this.#domain = config.address.slice(config.address.lastIndexOf('@') + 1).toLowerCase();
    const smtp: MailServer = {
      host: config.smtp.host,
      port: config.smtp.port,
      security: config.smtp.security,
      user: config.smtp.user,
      password: config.smtp.password.reveal(),
    };
    this.#smtp = new SmtpSender(smtp);
    addOwnMailbox(this, config.address);
  }

  async start(sink: MessageSink): Promise<void> {
    this.#sink = sink;
    addOwnMailbox(this, this.#config.address);
    const imap = this.#config.imap;
    this.#watcher = new MailboxWatcher({
      server: { ...imap, password: imap.password.reveal() },
      pollMs: this.#config.poll_seconds * 1000,
      maxBytes: this.#maxBytes,
      logger: this.#opts.logger.child({ repo: this.repoId, channel: 'email' }),
      handle: (mail) => this.#receive(mail),
      backoffMs: this.#opts.reconnectBackoffMs,
    });
    this.#watcher.start();
  }

  async stop(): Promise<void> {
    await this.#watcher?.stop();
    this.#watcher = undefined;
    this.#sink = undefined;
    this.#smtp.close();
    removeOwnMailbox(this);
  }

  health(): ChannelHealth {
    return this.#watcher?.health() ?? { state: 'stopped', since: Date.now() };
  }

  async authorize(msg: StoredMessage): Promise<AuthorizationResult> {
    const meta = msg.meta as EmailMeta | undefined;
    if (meta?.auth !== 'pass') {
      return { ok: false, reason: `email not authenticated: ${meta?.authReason ?? 'unknown'}` };
    }
    // Checked again here: the list may have changed since the message arrived.
    if (!isAuthorizedSender(msg.sender.id, this.#config.authorized_senders)) {
      return { ok: false, reason: `${msg.sender.id} is not in authorized_senders` };
    }
    // Before the size notice: that notice is a reply too, and machines get none.
    if (meta.automatic) return { ok: false, reason: meta.automatic };
    // Checked again here: another repository's mailbox may have been added since.
    if (isOwnMailbox(msg.sender.id)) return { ok: false, reason: ownMailboxReason(msg.sender.id) };
    if (meta.tooLarge) {
      return {
        ok: false,
        reason: `message of ${meta.tooLarge} bytes is over the limit`,
        notice: `Your message is ${mb(meta.tooLarge)} MB; errand reads messages of up to ${mb(this.#maxBytes)} MB. Send smaller attachments or a link to them, and write again.`,
      };
    }
    return { ok: true };
  }

  async openThread(thread: NewThread): Promise<string> {
    if (!thread.to) throw new Error('an email schedule needs `to:` (the recipient)');
    // A tag key: replies to the first mail carry the tag in their References.
    return tagKey(randomBytes(6).toString('hex'));
  }

  async deliver(d: Delivery, ctx: DeliveryContext): Promise<void> {
    const replyTo = ctx.replyTo;
    const threadKey = ctx.conversation?.threadKey ?? replyTo?.ownThreadKey;
    if (!threadKey) throw new Error(`delivery ${d.id} has no thread to answer`);
    const tag = conversationTag(threadKey);
    // A schedule's message carries only the recipient; everything else answers a mail.
    const scheduled = replyTo?.channel === 'schedule';
    const meta = scheduled ? undefined : (replyTo?.meta as EmailMeta | undefined);
    const to = scheduled ? (replyTo?.meta as { to?: string } | undefined)?.to : replyTo?.sender.id;
    if (!to) throw new Error(`delivery ${d.id} has no recipient`);
    const subject = taggedSubject(
      scheduled
        ? (ctx.conversation?.title ?? 'errand')
        : replySubject(meta?.subject || ctx.conversation?.title || 'errand'),
      tag,
    );
    const { files, notAttached } = await readDeliveryFiles(d.files, {
      bytes: this.#maxBytes,
      label: `${mb(this.#maxBytes)} MB mail limit`,
    });
    let text = d.text;
    if (notAttached.length) {
      text += `\n\n(Not attached: ${notAttached.join('; ')})`;
    }
    if (d.kind === 'ack' && ctx.link) text += `\n\nFollow along: ${ctx.link}`;
    const body = renderReply(text, { footer: ctx.footer });
    const references = meta ? [...meta.references, meta.messageId] : [];
    await this.#smtp.send({
      from: this.#config.address,
      to,
      cc: meta?.others ?? [],
      subject,
      messageId: errandMessageId(tag, d.id, this.#domain),
      inReplyTo: meta?.messageId,
      references,
      text: body.text,
      html: body.html,
      attachments: files.map((f) => ({ filename: f.name, content: f.content })),
    });
  }

  async #receive(mail: FetchedMail): Promise<void> {
    const sink = this.#sink;
    if (!sink) throw new Error('the email channel is stopped');
    const headers = rawHeaders(mail.source);
    const verdict = await verifySender(mail.source, headers, {
      trustedAuthservId: this.#config.trusted_authserv_id,
      verifyDkim: this.#config.verify_dkim,
      dnsServers: this.#config.dns_servers,
      resolver: this.#opts.resolver,
      authorizedSenders: this.#config.authorized_senders,
    });
    if (!verdict.ok && verdict.temporary) {
      throw new Error(`sender check could not finish (${verdict.reason}); will try again`);
    }
    let parsed: IncomingMail;
    let unreadable: string | undefined;
    try {
      parsed = await parseIncomingMail(
        mail.truncated ? Buffer.concat([mail.source, Buffer.from('\r\n')]) : mail.source,
        headers,
        this.#config.address,
      );
    } catch (e) {
      // Stored and refused rather than retried forever: a message that cannot be read now
      // cannot be read later either.
      unreadable = `the message could not be read: ${(e as Error).message}`;
      parsed = unreadableMail(mail.source);
    }
    const automatic =
      automaticMail(headers) ??
      (verdict.address && isOwnMailbox(verdict.address)
        ? ownMailboxReason(verdict.address)
        : undefined);
    const authenticated = verdict.ok && !unreadable;
    const accepted = authenticated && !automatic;
    const meta: EmailMeta = {
      auth: authenticated ? 'pass' : 'fail',
      authReason: verdict.ok ? unreadable : verdict.reason,
      messageId: parsed.messageId,
      references: parsed.references,
      subject: parsed.subject,
      others: parsed.others,
      automatic,
      tooLarge: mail.truncated ? mail.size : undefined,
    };
    const msg: IncomingMessage = {
      repoId: this.repoId,
      channel: 'email',
      // A refused message must not claim a Message-ID: a forger could otherwise make the
      // real message look like a duplicate.
      externalId: accepted ? parsed.messageId : `refused.${parsed.contentHash}`,
      contentHash: parsed.contentHash,
      threadKeys: [...parsed.threadKeys, tagKey(conversationTag(parsed.ownThreadKey))],
      ownThreadKey: parsed.ownThreadKey,
      sender: { id: verdict.address ?? 'unknown', name: verdict.ok ? verdict.name : undefined },
      text: accepted && !mail.truncated ? parsed.text : '',
      subject: parsed.subject,
      attachments:
        accepted && !mail.truncated
          ? await this.#saveAttachments(parsed.contentHash, parsed.attachments)
          : [],
      receivedAt: Date.now(),
      model: parsed.model,
      meta: { ...meta },
    };
    const r = await sink.receive(msg);
    // Made only when there is something to say: a child logger per mail adds up in a backlog.
    const log = () =>
      this.#opts.logger.child({ repo: this.repoId, channel: 'email', uid: mail.uid });
    if (!accepted) {
      log().warn({ message: r.messageId, reason: meta.authReason ?? automatic }, 'mail refused');
    } else if (r.duplicate) log().info({ message: r.messageId }, 'mail seen before; not run again');
  }

  async #saveAttachments(
    hash: string,
    files: Array<{ name: string | undefined; contentType: string; content: Uint8Array }>,
  ): Promise<Attachment[]> {
    if (files.length === 0) return [];
    const dir = join(this.#opts.attachmentsDir, this.repoId, hash.slice(0, 24));
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const kept = files.slice(0, MAX_ATTACHMENTS);
    const names = uniqueFileNames(kept.map((f, i) => safeFileName(f.name, `attachment-${i + 1}`)));
    const out: Attachment[] = [];
    for (const [i, f] of kept.entries()) {
      const path = join(dir, names[i]!);
      await writeNewFile(path, f.content);
      out.push({ name: names[i]!, path, size: f.content.byteLength, contentType: f.contentType });
    }
    return out;
  }
}

function ownMailboxReason(address: string): string {
  return `mail from ${address}, one of errand's own mailboxes; errand does not answer itself`;
}

function mb(bytes: number): string {
  return String(Number((bytes / 1024 / 1024).toPrecision(2)));
}
