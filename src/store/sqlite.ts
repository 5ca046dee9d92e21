import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import type {
  ChannelKind,
  Conversation,
  Delivery,
  DeliveryState,
  IncomingMessage,
  MessageState,
  StoredMessage,
  Task,
  TaskEvent,
  TaskState,
  TaskUsage,
} from '../domain/index.ts';
import { ErrandError } from '../util/errors.ts';
import { newId } from '../util/ids.ts';
import { MIGRATIONS } from './migrations.ts';
import type {
  DeliveryRef,
  FiledMessage,
  InsertMessageResult,
  MessageFiling,
  NewConversation,
  NewDelivery,
  Store,
  TaskFilter,
} from './types.ts';

type Row = Record<string, SQLInputValue>;

/** Absent optional fields are left out of returned objects rather than set to null. */
function opt<T>(v: unknown): T | undefined {
  return v === null || v === undefined ? undefined : (v as T);
}

// Copies rather than deletes: `delete` turns an object into a slower, larger dictionary.
function compact<T extends object>(o: T): T {
  const out = {} as T;
  for (const k in o) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

function toMessage(r: Row): StoredMessage {
  return compact({
    id: r.id as string,
    repoId: r.repo_id as string,
    channel: r.channel as ChannelKind,
    externalId: r.external_id as string,
    threadKeys: JSON.parse(r.thread_keys as string) as string[],
    ownThreadKey: r.own_thread_key as string,
    sender: compact({ id: r.sender_id as string, name: opt<string>(r.sender_name) }),
    text: r.text as string,
    subject: opt<string>(r.subject),
    attachments: JSON.parse(r.attachments as string),
    receivedAt: Number(r.received_at),
    model: opt<string>(r.model),
    meta: r.meta ? (JSON.parse(r.meta as string) as Record<string, unknown>) : undefined,
    contentHash: opt<string>(r.content_hash),
    state: r.state as MessageState,
    stateReason: opt<string>(r.state_reason),
    conversationId: opt<string>(r.conversation_id),
    taskId: opt<string>(r.task_id),
  });
}

function toConversation(r: Row): Conversation {
  return compact({
    id: r.id as string,
    repoId: r.repo_id as string,
    channel: r.channel as ChannelKind,
    threadKey: r.thread_key as string,
    title: r.title as string,
    model: opt<string>(r.model),
    sessionId: opt<string>(r.session_id),
    scheduleId: opt<string>(r.schedule_id),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  });
}

function toTask(r: Row): Task {
  return compact({
    id: r.id as string,
    conversationId: r.conversation_id as string,
    repoId: r.repo_id as string,
    state: r.state as TaskState,
    seq: Number(r.seq),
    createdAt: Number(r.created_at),
    startedAt: opt<number>(r.started_at),
    finishedAt: opt<number>(r.finished_at),
    outcome: opt<string>(r.outcome),
    usage: r.usage ? (JSON.parse(r.usage as string) as TaskUsage) : undefined,
    scheduleId: opt<string>(r.schedule_id),
  });
}

function toDelivery(r: Row): Delivery {
  return compact({
    id: r.id as string,
    repoId: r.repo_id as string,
    channel: r.channel as ChannelKind,
    conversationId: opt<string>(r.conversation_id),
    taskId: opt<string>(r.task_id),
    messageId: opt<string>(r.message_id),
    kind: r.kind as Delivery['kind'],
    text: r.text as string,
    files: JSON.parse(r.files as string) as string[],
    state: r.state as DeliveryState,
    attempts: Number(r.attempts),
    lastError: opt<string>(r.last_error),
    createdAt: Number(r.created_at),
    sentAt: opt<number>(r.sent_at),
  });
}

function inList(n: number): string {
  return Array.from({ length: n }, () => '?').join(', ');
}

/**
 * The store on node:sqlite. One connection, one writer (this process); WAL lets the CLI
 * read while errand runs. `synchronous = NORMAL` in WAL mode keeps every committed
 * transaction across a crash of the process (kill -9); only a power loss can drop the
 * last commits, which the sources (IMAP, Slack) then deliver again.
 */
export class SqliteStore implements Store {
  readonly #db: DatabaseSync;
  #stmts = new Map<string, StatementSync>();
  #seq: number;

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    try {
      this.#db = new DatabaseSync(path);
    } catch (e) {
      throw new ErrandError(
        'store_failed',
        `Cannot open the store at ${path}: ${(e as Error).message}`,
        { cause: e },
      );
    }
    if (path !== ':memory:') chmodSync(path, 0o600);
    this.#db.exec(
      'PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;',
    );
    this.#migrate(path);
    this.#seq = Number((this.#get('SELECT COALESCE(MAX(seq), 0) AS s FROM tasks') as Row).s);
  }

  #migrate(path: string): void {
    const version = Number((this.#db.prepare('PRAGMA user_version').get() as Row).user_version);
    if (version > MIGRATIONS.length) {
      throw new ErrandError(
        'store_failed',
        `The store at ${path} was written by a newer errand (schema ${version}, this one knows ${MIGRATIONS.length}). Upgrade errand, or start with another state folder.`,
      );
    }
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.#tx(() => {
        this.#db.exec(MIGRATIONS[v]!);
        this.#db.exec(`PRAGMA user_version = ${v + 1}`);
      });
    }
  }

  #stmt(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (!s) {
      s = this.#db.prepare(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  }

  #get(sql: string, ...params: SQLInputValue[]): Row | undefined {
    return this.#stmt(sql).get(...params) as Row | undefined;
  }

  #all(sql: string, ...params: SQLInputValue[]): Row[] {
    return this.#stmt(sql).all(...params) as Row[];
  }

  #run(sql: string, ...params: SQLInputValue[]): void {
    this.#stmt(sql).run(...params);
  }

  // node:sqlite is synchronous, so nothing else can interleave inside fn: a transaction is
  // exactly the statements fn runs.
  #tx<T>(fn: () => T): T {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const r = fn();
      this.#db.exec('COMMIT');
      return r;
    } catch (e) {
      this.#db.exec('ROLLBACK');
      throw e;
    }
  }

  async insertMessage(msg: IncomingMessage): Promise<InsertMessageResult> {
    return this.#tx(() => {
      let existing = this.#get(
        'SELECT * FROM messages WHERE repo_id = ? AND channel = ? AND external_id = ?',
        msg.repoId,
        msg.channel,
        msg.externalId,
      );
      if (!existing && msg.contentHash) {
        existing = this.#get(
          'SELECT * FROM messages WHERE repo_id = ? AND channel = ? AND content_hash = ?',
          msg.repoId,
          msg.channel,
          msg.contentHash,
        );
      }
      if (existing) return { message: toMessage(existing), duplicate: true };
      const id = newId('m');
      this.#run(
        `INSERT INTO messages (id, repo_id, channel, external_id, content_hash, thread_keys, own_thread_key, sender_id, sender_name,
           subject, text, attachments, received_at, model, meta, state, stored_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'received', ?)`,
        id,
        msg.repoId,
        msg.channel,
        msg.externalId,
        msg.contentHash ?? null,
        JSON.stringify(msg.threadKeys),
        msg.ownThreadKey,
        msg.sender.id,
        msg.sender.name ?? null,
        msg.subject ?? null,
        msg.text,
        JSON.stringify(msg.attachments),
        msg.receivedAt,
        msg.model ?? null,
        msg.meta ? JSON.stringify(msg.meta) : null,
        Date.now(),
      );
      return {
        message: toMessage(this.#get('SELECT * FROM messages WHERE id = ?', id)!),
        duplicate: false,
      };
    });
  }

  async getMessage(id: string): Promise<StoredMessage | undefined> {
    const r = this.#get('SELECT * FROM messages WHERE id = ?', id);
    return r && toMessage(r);
  }

  async listMessages(filter: {
    states?: MessageState[];
    conversationId?: string;
    taskId?: string;
  }): Promise<StoredMessage[]> {
    const where: string[] = [];
    const params: SQLInputValue[] = [];
    if (filter.states?.length) {
      where.push(`state IN (${inList(filter.states.length)})`);
      params.push(...filter.states);
    }
    if (filter.conversationId) {
      where.push('conversation_id = ?');
      params.push(filter.conversationId);
    }
    if (filter.taskId) {
      where.push('task_id = ?');
      params.push(filter.taskId);
    }
    const sql = `SELECT * FROM messages ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY received_at, stored_at, id`;
    return this.#all(sql, ...params).map(toMessage);
  }

  async listMessageRefs(filter: {
    states: MessageState[];
  }): Promise<Array<Pick<StoredMessage, 'id' | 'repoId' | 'channel'>>> {
    return this.#all(
      `SELECT id, repo_id, channel FROM messages WHERE state IN (${inList(filter.states.length)})
       ORDER BY received_at, stored_at, id`,
      ...filter.states,
    ).map((r) => ({
      id: r.id as string,
      repoId: r.repo_id as string,
      channel: r.channel as ChannelKind,
    }));
  }

  async setMessageState(
    id: string,
    state: MessageState,
    extra: { reason?: string; conversationId?: string; taskId?: string } = {},
  ): Promise<void> {
    this.#run(
      `UPDATE messages SET state = ?, state_reason = COALESCE(?, state_reason),
         conversation_id = COALESCE(?, conversation_id), task_id = COALESCE(?, task_id) WHERE id = ?`,
      state,
      extra.reason ?? null,
      extra.conversationId ?? null,
      extra.taskId ?? null,
      id,
    );
  }

  async findConversationByThread(
    repoId: string,
    channel: ChannelKind,
    threadKey: string,
  ): Promise<Conversation | undefined> {
    const r = this.#conversationByThread(repoId, channel, threadKey);
    return r && toConversation(r);
  }

  #conversationByThread(repoId: string, channel: ChannelKind, threadKey: string): Row | undefined {
    return this.#get(
      `SELECT c.* FROM thread_keys k JOIN conversations c ON c.id = k.conversation_id
       WHERE k.repo_id = ? AND k.channel = ? AND k.thread_key = ?`,
      repoId,
      channel,
      threadKey,
    );
  }

  async createConversation(c: NewConversation): Promise<Conversation> {
    const id = this.#tx(() => this.#insertConversation(c));
    return toConversation(this.#get('SELECT * FROM conversations WHERE id = ?', id)!);
  }

  /** Inserts a conversation with its first thread key; returns its id. */
  #insertConversation(c: NewConversation): string {
    const id = newId('c');
    const now = Date.now();
    this.#run(
      `INSERT INTO conversations (id, repo_id, channel, thread_key, title, model, schedule_id, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      id,
      c.repoId,
      c.channel,
      c.threadKey,
      c.title,
      c.model ?? null,
      c.scheduleId ?? null,
      now,
      now,
    );
    this.#insertThreadKeys(id, c.repoId, c.channel, [c.threadKey]);
    return id;
  }

  #insertThreadKeys(
    conversationId: string,
    repoId: string,
    channel: ChannelKind,
    keys: Iterable<string>,
  ): void {
    for (const k of new Set(keys)) {
      this.#run(
        'INSERT OR IGNORE INTO thread_keys (repo_id, channel, thread_key, conversation_id) VALUES (?, ?, ?, ?)',
        repoId,
        channel,
        k,
        conversationId,
      );
    }
  }

  async addThreadKeys(conversationId: string, keys: string[]): Promise<void> {
    const c = this.#get('SELECT repo_id, channel FROM conversations WHERE id = ?', conversationId);
    if (!c) return;
    this.#tx(() =>
      this.#insertThreadKeys(conversationId, c.repo_id as string, c.channel as ChannelKind, keys),
    );
  }

  async getConversation(id: string): Promise<Conversation | undefined> {
    const r = this.#get('SELECT * FROM conversations WHERE id = ?', id);
    return r && toConversation(r);
  }

  async listConversations(filter: { repoId?: string; limit?: number }): Promise<Conversation[]> {
    const limit = filter.limit ?? -1;
    const rows = filter.repoId
      ? this.#all(
          'SELECT * FROM conversations WHERE repo_id = ? ORDER BY updated_at DESC, id LIMIT ?',
          filter.repoId,
          limit,
        )
      : this.#all('SELECT * FROM conversations ORDER BY updated_at DESC, id LIMIT ?', limit);
    return rows.map(toConversation);
  }

  async updateConversation(
    id: string,
    patch: { sessionId?: string | null; title?: string },
  ): Promise<void> {
    if (patch.sessionId !== undefined)
      this.#run(
        'UPDATE conversations SET session_id = ?, updated_at = ? WHERE id = ?',
        patch.sessionId,
        Date.now(),
        id,
      );
    if (patch.title !== undefined)
      this.#run(
        'UPDATE conversations SET title = ?, updated_at = ? WHERE id = ?',
        patch.title,
        Date.now(),
        id,
      );
  }

  async listIdleConversationsBefore(before: number): Promise<Conversation[]> {
    return this.#all(
      `SELECT * FROM conversations c WHERE updated_at < ?
         AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.conversation_id = c.id AND t.state IN ('queued', 'running'))
       ORDER BY updated_at`,
      before,
    ).map(toConversation);
  }

  async detachConversation(id: string): Promise<string[]> {
    // One transaction against fileMessage's: a message filed first has queued its task
    // (so this refuses), a message filed after finds no conversation for its thread.
    return this.#tx(() => {
      const busy = this.#all(
        "SELECT id FROM tasks WHERE conversation_id = ? AND state IN ('queued', 'running') ORDER BY rowid",
        id,
      ).map((r) => r.id as string);
      if (!busy.length) this.#run('DELETE FROM thread_keys WHERE conversation_id = ?', id);
      return busy;
    });
  }

  async deleteConversation(id: string): Promise<void> {
    this.#tx(() => {
      // Children first: messages and deliveries reference tasks, events reference tasks.
      this.#run('DELETE FROM deliveries WHERE conversation_id = ?', id);
      this.#run('DELETE FROM messages WHERE conversation_id = ?', id);
      this.#run(
        'DELETE FROM task_events WHERE task_id IN (SELECT id FROM tasks WHERE conversation_id = ?)',
        id,
      );
      this.#run('DELETE FROM tasks WHERE conversation_id = ?', id);
      this.#run('DELETE FROM thread_keys WHERE conversation_id = ?', id);
      this.#run('DELETE FROM conversations WHERE id = ?', id);
    });
  }

  async queueMessage(
    messageId: string,
    conversationId: string,
    opts: { scheduleId?: string } = {},
  ): Promise<{ task: Task; merged: boolean }> {
    return this.#tx(() => {
      const msg = this.#get('SELECT state, task_id FROM messages WHERE id = ?', messageId);
      if (!msg) throw new ErrandError('not_found', `no message ${messageId}`);
      if (msg.task_id && msg.state !== 'received') return this.#filedBefore(msg);
      return this.#queue(messageId, conversationId, opts.scheduleId);
    });
  }

  /** The task a message was filed into earlier, and whether it merged there. */
  #filedBefore(msg: Row): { task: Task; merged: boolean } {
    return {
      task: toTask(this.#get('SELECT * FROM tasks WHERE id = ?', msg.task_id!)!),
      merged: msg.state === 'merged',
    };
  }

  #queue(
    messageId: string,
    conversationId: string,
    scheduleId: string | undefined,
  ): { task: Task; merged: boolean } {
    const conv = this.#get('SELECT repo_id FROM conversations WHERE id = ?', conversationId);
    if (!conv) throw new ErrandError('not_found', `no conversation ${conversationId}`);
    const now = Date.now();
    this.#run('UPDATE conversations SET updated_at = ? WHERE id = ?', now, conversationId);
    const queued = this.#get(
      "SELECT * FROM tasks WHERE conversation_id = ? AND state = 'queued' ORDER BY seq LIMIT 1",
      conversationId,
    );
    if (queued) {
      this.#run(
        "UPDATE messages SET state = 'merged', task_id = ?, conversation_id = ? WHERE id = ?",
        queued.id!,
        conversationId,
        messageId,
      );
      return { task: toTask(queued), merged: true };
    }
    const id = newId('t');
    const seq = ++this.#seq;
    this.#run(
      "INSERT INTO tasks (id, conversation_id, repo_id, state, seq, created_at, schedule_id) VALUES (?, ?, ?, 'queued', ?, ?, ?)",
      id,
      conversationId,
      conv.repo_id!,
      seq,
      now,
      scheduleId ?? null,
    );
    this.#run(
      "UPDATE messages SET state = 'queued', task_id = ?, conversation_id = ? WHERE id = ?",
      id,
      conversationId,
      messageId,
    );
    return { task: toTask(this.#get('SELECT * FROM tasks WHERE id = ?', id)!), merged: false };
  }

  async fileMessage(messageId: string, filing: MessageFiling): Promise<FiledMessage> {
    return this.#tx(() => {
      const msg = this.#get('SELECT * FROM messages WHERE id = ?', messageId);
      if (!msg) throw new ErrandError('not_found', `no message ${messageId}`);
      const conversationOf = (id: string) =>
        toConversation(this.#get('SELECT * FROM conversations WHERE id = ?', id)!);
      if (msg.state !== 'received') {
        if (!msg.task_id)
          throw new ErrandError(
            'internal',
            `message ${messageId} is ${String(msg.state)} and cannot be filed into a conversation`,
          );
        const ack = this.#get(
          "SELECT * FROM deliveries WHERE message_id = ? AND kind = 'ack' ORDER BY created_at, rowid LIMIT 1",
          messageId,
        );
        return {
          ...this.#filedBefore(msg),
          conversation: conversationOf(msg.conversation_id as string),
          ack: ack && toDelivery(ack),
          repeated: true,
        };
      }
      const m = toMessage(msg);
      let found: Row | undefined;
      for (const key of m.threadKeys) {
        found = this.#conversationByThread(m.repoId, filing.channel, key);
        if (found) break;
      }
      const isNew = found === undefined;
      const conversationId =
        (found?.id as string | undefined) ??
        this.#insertConversation({
          repoId: m.repoId,
          channel: filing.channel,
          threadKey: m.ownThreadKey,
          title: filing.title,
          model: filing.model,
          scheduleId: filing.scheduleId,
        });
      this.#insertThreadKeys(conversationId, m.repoId, filing.channel, [
        m.ownThreadKey,
        ...m.threadKeys,
      ]);
      const queued = this.#queue(messageId, conversationId, filing.scheduleId);
      const ack =
        isNew && filing.ack !== undefined
          ? this.#insertDelivery({
              repoId: m.repoId,
              channel: filing.channel,
              conversationId,
              messageId,
              kind: 'ack',
              text: filing.ack,
            })
          : undefined;
      return { ...queued, conversation: conversationOf(conversationId), ack, repeated: false };
    });
  }

  async rejectMessage(
    messageId: string,
    reason: string,
    notice?: Omit<NewDelivery, 'kind' | 'messageId'>,
  ): Promise<Delivery | undefined> {
    return this.#tx(() => {
      const msg = this.#get('SELECT state FROM messages WHERE id = ?', messageId);
      if (!msg) throw new ErrandError('not_found', `no message ${messageId}`);
      if (msg.state !== 'received') return undefined;
      this.#run(
        "UPDATE messages SET state = 'rejected', state_reason = ? WHERE id = ?",
        reason,
        messageId,
      );
      return notice && this.#insertDelivery({ ...notice, messageId, kind: 'rejected' });
    });
  }

  async getTask(id: string): Promise<Task | undefined> {
    const r = this.#get('SELECT * FROM tasks WHERE id = ?', id);
    return r && toTask(r);
  }

  async listTasks(filter: TaskFilter): Promise<Task[]> {
    const where: string[] = [];
    const params: SQLInputValue[] = [];
    if (filter.states?.length) {
      where.push(`state IN (${inList(filter.states.length)})`);
      params.push(...filter.states);
    }
    if (filter.repoId) {
      where.push('repo_id = ?');
      params.push(filter.repoId);
    }
    if (filter.conversationId) {
      where.push('conversation_id = ?');
      params.push(filter.conversationId);
    }
    if (filter.scheduleId) {
      where.push('schedule_id = ?');
      params.push(filter.scheduleId);
    }
    params.push(filter.limit ?? -1);
    const sql = `SELECT * FROM tasks ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq ${filter.newestFirst ? 'DESC' : ''} LIMIT ?`;
    return this.#all(sql, ...params).map(toTask);
  }

  async updateTask(
    id: string,
    patch: {
      state?: TaskState;
      startedAt?: number;
      finishedAt?: number;
      outcome?: string;
      usage?: TaskUsage;
    },
  ): Promise<void> {
    this.#run(
      `UPDATE tasks SET state = COALESCE(?, state), started_at = COALESCE(?, started_at), finished_at = COALESCE(?, finished_at),
         outcome = COALESCE(?, outcome), usage = COALESCE(?, usage) WHERE id = ?`,
      patch.state ?? null,
      patch.startedAt ?? null,
      patch.finishedAt ?? null,
      patch.outcome ?? null,
      patch.usage ? JSON.stringify(patch.usage) : null,
      id,
    );
  }

  async finishTask(
    id: string,
    end: {
      state: TaskState;
      outcome?: string;
      usage?: TaskUsage;
      messageState: MessageState;
      reason?: string;
      delivery?: NewDelivery;
    },
  ): Promise<Delivery | undefined> {
    return this.#tx(() => {
      const now = Date.now();
      this.#run(
        'UPDATE tasks SET state = ?, finished_at = ?, outcome = COALESCE(?, outcome), usage = COALESCE(?, usage) WHERE id = ?',
        end.state,
        now,
        end.outcome ?? null,
        end.usage ? JSON.stringify(end.usage) : null,
        id,
      );
      this.#run(
        "UPDATE messages SET state = ?, state_reason = COALESCE(?, state_reason) WHERE task_id = ? AND state = 'queued'",
        end.messageState,
        end.reason ?? null,
        id,
      );
      const conv = this.#get('SELECT conversation_id FROM tasks WHERE id = ?', id);
      if (conv)
        this.#run(
          'UPDATE conversations SET updated_at = ? WHERE id = ?',
          now,
          conv.conversation_id!,
        );
      return end.delivery ? this.#insertDelivery(end.delivery) : undefined;
    });
  }

  async appendEvent(
    taskId: string,
    kind: string,
    data: unknown,
    at = Date.now(),
  ): Promise<TaskEvent> {
    const r = this.#get(
      'SELECT COALESCE(MAX(seq), 0) + 1 AS seq FROM task_events WHERE task_id = ?',
      taskId,
    )!;
    const seq = Number(r.seq);
    this.#run(
      'INSERT INTO task_events (task_id, seq, at, kind, data) VALUES (?, ?, ?, ?, ?)',
      taskId,
      seq,
      at,
      kind,
      JSON.stringify(data ?? null),
    );
    return { taskId, seq, at, kind, data };
  }

  async listEvents(taskId: string, afterSeq = 0, limit = -1): Promise<TaskEvent[]> {
    return this.#all(
      'SELECT * FROM task_events WHERE task_id = ? AND seq > ? ORDER BY seq LIMIT ?',
      taskId,
      afterSeq,
      limit,
    ).map((r) => ({
      taskId: r.task_id as string,
      seq: Number(r.seq),
      at: Number(r.at),
      kind: r.kind as string,
      data: JSON.parse(r.data as string),
    }));
  }

  #insertDelivery(d: NewDelivery): Delivery {
    const id = newId('d');
    this.#run(
      `INSERT INTO deliveries (id, repo_id, channel, conversation_id, task_id, message_id, kind, text, files, state, attempts, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?)`,
      id,
      d.repoId,
      d.channel,
      d.conversationId ?? null,
      d.taskId ?? null,
      d.messageId ?? null,
      d.kind,
      d.text,
      JSON.stringify(d.files ?? []),
      Date.now(),
    );
    return toDelivery(this.#get('SELECT * FROM deliveries WHERE id = ?', id)!);
  }

  async createDelivery(d: NewDelivery): Promise<Delivery> {
    return this.#insertDelivery(d);
  }

  async getDelivery(id: string): Promise<Delivery | undefined> {
    const r = this.#get('SELECT * FROM deliveries WHERE id = ?', id);
    return r && toDelivery(r);
  }

  async listDeliveryRefs(filter: { states: DeliveryState[] }): Promise<DeliveryRef[]> {
    return this.#all(
      `SELECT id, repo_id, channel, conversation_id, attempts FROM deliveries
       WHERE state IN (${inList(filter.states.length)}) ORDER BY created_at, rowid`,
      ...filter.states,
    ).map((r) =>
      compact({
        id: r.id as string,
        repoId: r.repo_id as string,
        channel: r.channel as ChannelKind,
        conversationId: opt<string>(r.conversation_id),
        attempts: Number(r.attempts),
      }),
    );
  }

  async listDeliveries(filter: {
    states?: DeliveryState[];
    taskId?: string;
    conversationId?: string;
  }): Promise<Delivery[]> {
    const where: string[] = [];
    const params: SQLInputValue[] = [];
    if (filter.states?.length) {
      where.push(`state IN (${inList(filter.states.length)})`);
      params.push(...filter.states);
    }
    if (filter.taskId) {
      where.push('task_id = ?');
      params.push(filter.taskId);
    }
    if (filter.conversationId) {
      where.push('conversation_id = ?');
      params.push(filter.conversationId);
    }
    const sql = `SELECT * FROM deliveries ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, rowid`;
    return this.#all(sql, ...params).map(toDelivery);
  }

  /** Each call that carries an error counts one attempt; `sent` records the time. */
  async markDelivery(id: string, patch: { state: DeliveryState; error?: string }): Promise<void> {
    this.#run(
      `UPDATE deliveries SET state = ?, last_error = COALESCE(?, last_error),
         attempts = attempts + (CASE WHEN ? IS NOT NULL THEN 1 ELSE 0 END),
         sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE id = ?`,
      patch.state,
      patch.error ?? null,
      patch.error ?? null,
      patch.state,
      Date.now(),
      id,
    );
  }

  async close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
  }
}

export function openSqliteStore(path: string): SqliteStore {
  return new SqliteStore(path);
}
