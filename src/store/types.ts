/**
 * The durable store's contract. SQLite (node:sqlite) is the first implementation; the
 * interface is async and free of SQL so a PostgreSQL store can implement it later. What
 * it stores is errand's vocabulary (src/domain/).
 */
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

/** Where to find a delivery again and how to queue it: not its text or files. */
export type DeliveryRef = Pick<
  Delivery,
  'id' | 'repoId' | 'channel' | 'conversationId' | 'attempts'
>;

/** A delivery to write: the store gives it its id, state and times. */
export type NewDelivery = Pick<
  Delivery,
  'repoId' | 'channel' | 'conversationId' | 'taskId' | 'messageId' | 'kind' | 'text'
> & { files?: string[] };

export interface InsertMessageResult {
  message: StoredMessage;
  /** True when this external id (or content hash) was stored before; nothing was written. */
  duplicate: boolean;
}

export interface NewConversation {
  repoId: string;
  channel: ChannelKind;
  threadKey: string;
  title: string;
  model?: string;
  scheduleId?: string;
}

/** How to file an authorized message; see `Store.fileMessage`. */
export interface MessageFiling {
  /**
   * The channel the conversation lives on: the message's own, except for a schedule's
   * message, which opens its conversation on the channel the schedule names.
   */
  channel: ChannelKind;
  /** Title of the conversation when this message opens one. */
  title: string;
  /** Model of the conversation when this message opens one. */
  model?: string;
  /** The schedule behind the message; recorded on a new conversation and a new task. */
  scheduleId?: string;
  /**
   * Text of the `ack` delivery to create when this message opens its conversation.
   * Undefined: the channel does not acknowledge new conversations; none is created.
   */
  ack?: string;
}

export interface FiledMessage {
  conversation: Conversation;
  /** The task that will answer the message: a new one, or the queued one it joined. */
  task: Task;
  /** The message joined a queued task another message opened. */
  merged: boolean;
  /** The acknowledgement created when the message opened its conversation, if any. */
  ack?: Delivery;
  /**
   * The message had been filed before (it was no longer `received`): nothing was written
   * and the fields say what the first filing did.
   */
  repeated: boolean;
}

export interface TaskFilter {
  states?: TaskState[];
  repoId?: string;
  conversationId?: string;
  scheduleId?: string;
  limit?: number;
  /** Newest (highest seq) first; default oldest first. */
  newestFirst?: boolean;
}

export interface Store {
  /** Stores a message unless its (repo, channel, externalId) or contentHash is known. */
  insertMessage(msg: IncomingMessage): Promise<InsertMessageResult>;
  getMessage(id: string): Promise<StoredMessage | undefined>;
  listMessages(filter: {
    states?: MessageState[];
    conversationId?: string;
    taskId?: string;
  }): Promise<StoredMessage[]>;
  /**
   * The id, repository and channel of each message in one of `states`, in the order
   * listMessages gives: what recovery needs to queue a backlog without loading it.
   */
  listMessageRefs(filter: {
    states: MessageState[];
  }): Promise<Array<Pick<StoredMessage, 'id' | 'repoId' | 'channel'>>>;
  setMessageState(
    id: string,
    state: MessageState,
    extra?: { reason?: string; conversationId?: string; taskId?: string },
  ): Promise<void>;

  /** The conversation a thread key maps to, if any. */
  findConversationByThread(
    repoId: string,
    channel: ChannelKind,
    threadKey: string,
  ): Promise<Conversation | undefined>;
  createConversation(c: NewConversation): Promise<Conversation>;
  /** Maps more thread keys to a conversation; keys already mapped are left alone. */
  addThreadKeys(conversationId: string, keys: string[]): Promise<void>;
  getConversation(id: string): Promise<Conversation | undefined>;
  listConversations(filter: { repoId?: string; limit?: number }): Promise<Conversation[]>;
  updateConversation(
    id: string,
    patch: { sessionId?: string | null; title?: string },
  ): Promise<void>;
  /** Conversations not updated since `before` with no queued or running task. */
  listIdleConversationsBefore(before: number): Promise<Conversation[]>;
  /**
   * Takes a conversation off its threads before it is deleted, in one write, unless it has
   * a queued or running task: a message filed afterwards in one of its threads opens a new
   * conversation instead of joining one whose folders are being removed. Returns the ids of
   * its unfinished tasks; empty when it was detached (or has no thread keys left, or does
   * not exist).
   */
  detachConversation(id: string): Promise<string[]>;
  /** Deletes a conversation with its messages, tasks, events, thread keys and deliveries. */
  deleteConversation(id: string): Promise<void>;

  /**
   * Puts an authorized message into its conversation's queue, atomically: when the
   * conversation has a queued task that has not started, the message joins it (state
   * `merged`); otherwise a new queued task is created for it (state `queued`).
   */
  queueMessage(
    messageId: string,
    conversationId: string,
    opts?: { scheduleId?: string },
  ): Promise<{ task: Task; merged: boolean }>;
  /**
   * Files an authorized `received` message, in one transaction: finds the conversation of
   * the first of its thread keys that has one (on `filing.channel`) or opens one under its
   * own thread key, maps its own and all its thread keys to it, queues or merges it as
   * `queueMessage` does, and creates the `ack` delivery when it opened the conversation and
   * `filing.ack` is set. A crash leaves either all of it or none (the message stays
   * `received` and is filed again). Idempotent on the message: filed before, it returns the
   * earlier result with `repeated` and writes nothing. Throws `not_found` for an unknown
   * message and `internal` for one that ended without a task (rejected).
   */
  fileMessage(messageId: string, filing: MessageFiling): Promise<FiledMessage>;
  /**
   * Rejects a `received` message with its reason and, in the same transaction, records the
   * `rejected` delivery that tells the sender, when a notice is given. A message that is no
   * longer `received` is left alone and nothing is created (returns undefined).
   */
  rejectMessage(
    messageId: string,
    reason: string,
    notice?: Omit<NewDelivery, 'kind' | 'messageId'>,
  ): Promise<Delivery | undefined>;
  getTask(id: string): Promise<Task | undefined>;
  listTasks(filter: TaskFilter): Promise<Task[]>;
  updateTask(
    id: string,
    patch: {
      state?: TaskState;
      startedAt?: number;
      finishedAt?: number;
      outcome?: string;
      usage?: TaskUsage;
    },
  ): Promise<void>;
  /**
   * Ends a task atomically: sets its terminal state, moves its `queued` messages to
   * `messageState`, and records the delivery that tells the thread. A crash cannot leave
   * a finished task without its reply, or a reply without its finished task.
   */
  finishTask(
    id: string,
    end: {
      state: TaskState;
      outcome?: string;
      usage?: TaskUsage;
      messageState: MessageState;
      reason?: string;
      delivery?: NewDelivery;
    },
  ): Promise<Delivery | undefined>;

  appendEvent(taskId: string, kind: string, data: unknown, at?: number): Promise<TaskEvent>;
  /** Events of a task after `afterSeq` (exclusive), oldest first. */
  listEvents(taskId: string, afterSeq?: number, limit?: number): Promise<TaskEvent[]>;

  createDelivery(d: NewDelivery): Promise<Delivery>;
  getDelivery(id: string): Promise<Delivery | undefined>;
  listDeliveries(filter: {
    states?: DeliveryState[];
    taskId?: string;
    conversationId?: string;
  }): Promise<Delivery[]>;
  /** listDeliveries of `states`, as refs: what recovery needs to queue them. */
  listDeliveryRefs(filter: { states: DeliveryState[] }): Promise<DeliveryRef[]>;
  markDelivery(id: string, patch: { state: DeliveryState; error?: string }): Promise<void>;

  close(): Promise<void>;
}
