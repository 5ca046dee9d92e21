/**
 * errand's vocabulary: the messages, conversations, tasks, events and deliveries every
 * part speaks of, and the network requests a sandbox made. Types and their fixed values
 * only; no part's behaviour lives here, so channels, the store, the gateway, execution
 * and the dashboard all import it without importing each other.
 *
 * Identifiers are opaque strings made by the store: `m_…` messages, `c_…` conversations,
 * `t_…` tasks, `d_…` deliveries. Times are epoch milliseconds.
 */

export type ChannelKind = 'email' | 'slack' | 'web' | 'schedule';

/**
 * Where a stored message is in its life. Every message ends in exactly one of the four
 * terminal states: `answered`, `rejected`, `merged`, `interrupted`.
 * - `received`: stored, not yet authorized or queued (a crash here means "process it again").
 * - `queued`: carried by a task that has not finished.
 * - `merged`: joined a task that another message opened; that task answers it.
 */
export type MessageState =
  | 'received'
  | 'queued'
  | 'answered'
  | 'rejected'
  | 'merged'
  | 'interrupted';

export const TERMINAL_MESSAGE_STATES: readonly MessageState[] = [
  'answered',
  'rejected',
  'merged',
  'interrupted',
];

export interface Attachment {
  /** File name as the sender gave it, sanitized by the channel. */
  name: string;
  /** Path on the host where the channel saved it; copied into the conversation's inbox. */
  path: string;
  size: number;
  contentType?: string;
}

export interface Sender {
  /** Stable id in the channel: an email address, a Slack user id, a web user name. */
  id: string;
  /** Display name, when the channel knows one. */
  name?: string;
}

/** A message as a channel hands it to the gateway. */
export interface IncomingMessage {
  repoId: string;
  channel: ChannelKind;
  /**
   * The id the source gave this message (Message-ID, Slack event id, web request id).
   * Stored unique per repo and channel: a second delivery of the same id is a duplicate.
   */
  externalId: string;
  /** Keys that identify the thread this message belongs to, most specific first. */
  threadKeys: string[];
  /** The key new threads are recorded under (e.g. this message's own Message-ID). */
  ownThreadKey: string;
  sender: Sender;
  text: string;
  subject?: string;
  attachments: Attachment[];
  receivedAt: number;
  /** Model requested for a new conversation (email subaddress, Slack prefix, web option). */
  model?: string;
  /** Channel-private data the channel needs to reply in the thread (e.g. email headers). */
  meta?: Record<string, unknown>;
  /** Content hash, so a re-delivery with a new id is still recognised. Optional. */
  contentHash?: string;
}

export interface StoredMessage extends IncomingMessage {
  id: string;
  state: MessageState;
  /** Why the message was rejected or interrupted; never holds secrets. */
  stateReason?: string;
  conversationId?: string;
  taskId?: string;
}

export interface Conversation {
  id: string;
  repoId: string;
  channel: ChannelKind;
  /** The first thread key recorded for it; replies are delivered against it. */
  threadKey: string;
  title: string;
  model?: string;
  /** The agent's session id, set after the first task. */
  sessionId?: string;
  /** Schedule that opened this conversation, if any. */
  scheduleId?: string;
  createdAt: number;
  updatedAt: number;
}

export type TaskState = 'queued' | 'running' | 'done' | 'failed' | 'stopped' | 'interrupted';

export const TERMINAL_TASK_STATES: readonly TaskState[] = [
  'done',
  'failed',
  'stopped',
  'interrupted',
];

export interface TaskUsage {
  costUsd?: number;
  turns?: number;
  durationMs?: number;
  inputTokens?: number;
  outputTokens?: number;
  cacheReadTokens?: number;
  cacheCreationTokens?: number;
  webSearches?: number;
  webFetches?: number;
}

export interface Task {
  id: string;
  conversationId: string;
  repoId: string;
  state: TaskState;
  /** Monotonic queue position; tasks start in this order. */
  seq: number;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  /** Outcome detail: failure kind or who stopped it. */
  outcome?: string;
  usage?: TaskUsage;
  scheduleId?: string;
}

/** One thing that happened during a task, in order (agent stream lines, sandbox output). */
export interface TaskEvent {
  taskId: string;
  seq: number;
  at: number;
  kind: string;
  data: unknown;
}

/** `ack`: the short "got it" some channels send when a conversation starts. */
export type DeliveryKind =
  | 'reply'
  | 'error'
  | 'stopped'
  | 'interrupted'
  | 'rejected'
  | 'notice'
  | 'ack';
export type DeliveryState = 'pending' | 'sent' | 'failed';

/**
 * Something to send back through a channel (transactional outbox). A delivery is written
 * before it is sent and marked sent after; on restart, pending deliveries are sent again
 * with the same id so a channel can recognise a repeat.
 */
export interface Delivery {
  id: string;
  repoId: string;
  channel: ChannelKind;
  conversationId?: string;
  taskId?: string;
  /** The message this answers, for channels that reply to a specific message. */
  messageId?: string;
  kind: DeliveryKind;
  text: string;
  /** Host paths of files to attach. */
  files: string[];
  state: DeliveryState;
  attempts: number;
  lastError?: string;
  createdAt: number;
  sentAt?: number;
}

/**
 * One request that tried to leave a sandbox, as the proxy logs it and the gateway and
 * dashboard show it. Here so both sides share it without importing each other.
 * Query values and credentials never appear.
 */
export interface NetworkRequest {
  time: string;
  action: 'allowed' | 'blocked';
  method: string;
  /** Scheme, host and path; query keys only. */
  url: string;
  /** The HTTP status answered; 0 when no request was read (a refused connection). */
  status: number;
  /** Why it was blocked or failed, as a refusal code. */
  code?: string;
  /** Names of the masked secrets whose real values were put in. */
  swapped: string[];
  /** What errand took out of a model API request (server tool types, `mcp_servers`). */
  removed?: string[];
}
