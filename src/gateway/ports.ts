/**
 * The seams the gateway talks through. Channels, the task executor (workspace, sandbox and
 * agent behind it) and the store are chosen by the caller; the gateway knows only these
 * shapes, so each side can be built and tested on its own.
 */
import type { RepoConfig } from '../config/index.ts';
import type {
  Attachment,
  ChannelKind,
  Conversation,
  Delivery,
  IncomingMessage,
  NetworkRequest,
  StoredMessage,
  Task,
  TaskUsage,
} from '../domain/index.ts';

export type HealthState = 'starting' | 'connected' | 'retrying' | 'failed' | 'stopped';

export interface ChannelHealth {
  state: HealthState;
  /** Last error, already free of secrets. */
  lastError?: string;
  since: number;
}

/** What a channel calls for each message it receives. */
export interface MessageSink {
  /**
   * Stores the message durably. Resolves once it is stored (or recognised as a duplicate);
   * only then may the channel acknowledge it to its source. Rejects when it could not be
   * stored: the channel must then leave the message unacknowledged at the source.
   */
  receive(msg: IncomingMessage): Promise<{ messageId: string; duplicate: boolean }>;
  /** Whether a conversation of this channel is recorded under the thread key. */
  hasConversation(threadKey: string): Promise<boolean>;
}

/**
 * `notice`: text sent back into the thread although the message is refused. Only for a
 * sender the channel authenticated and authorized (e.g. a message over the size limit);
 * everyone else learns nothing.
 */
export type AuthorizationResult = { ok: true } | { ok: false; reason: string; notice?: string };

/** A new thread opened by errand itself (scheduled tasks). */
export interface NewThread {
  /** Recipient in the channel's terms: an email address, a Slack channel id, nothing for web. */
  to?: string;
  title: string;
}

/**
 * One channel of one repository. Implementations: email, slack, web.
 * A channel knows nothing about sandboxes or agents.
 */
export interface Channel {
  readonly kind: ChannelKind;
  readonly repoId: string;
  /** Starts listening; resolves once listening began (a later outage shows in health()). */
  start(sink: MessageSink): Promise<void>;
  /** Stops listening and releases connections; pending acknowledgements are not sent. */
  stop(): Promise<void>;
  health(): ChannelHealth;
  /**
   * Decides whether the sender may use this repository through this channel. Runs after
   * the message is stored and before any workspace or sandbox exists.
   */
  authorize(msg: StoredMessage): Promise<AuthorizationResult>;
  /**
   * Sends a reply or notice into the conversation's thread. `delivery.id` is stable across
   * retries: a channel that can should make a repeat with the same id a no-op.
   * Throws when the delivery could not be made; the gateway retries with backoff.
   */
  deliver(delivery: Delivery, context: DeliveryContext): Promise<void>;
  /**
   * True when the channel wants an `ack` delivery for each new conversation (a short "got
   * it" in the thread, e.g. for email, where nothing else shows the message arrived).
   */
  readonly acknowledgesNewConversations?: boolean;
  /**
   * The running task's plan changed (the agent's TodoWrite list). Best effort: called
   * without waiting, failures are logged; the channel decides how often to show it.
   */
  progress?(conversation: Conversation, task: Task, plan: PlanStep[]): Promise<void>;
  /** Opens a new thread for a scheduled task and returns its thread key. */
  openThread?(thread: NewThread): Promise<string>;
}

/** What a channel may need besides the delivery itself to reply in the right thread. */
export interface DeliveryContext {
  /** Absent for deliveries outside a conversation. */
  conversation?: Conversation;
  /** The message this delivery answers (its channel metadata holds the thread headers). */
  replyTo?: StoredMessage;
  /**
   * One line of cost and usage to show under the reply, when the repository asks for it
   * (`usage_footer: true`); absent otherwise.
   */
  footer?: string;
  /** Link to the conversation on the dashboard, when `dashboard.base_url` is set. */
  link?: string;
  /**
   * An earlier attempt may have reached the thread: it failed after the channel took it
   * in part, or the errand that made it died before marking it sent. A channel with no
   * idempotency key of its own (Slack) looks at the thread before it sends again.
   */
  mayHaveBeenSent?: boolean;
}

export interface PlanStep {
  content: string;
  /** `pending`, `in_progress` or `completed`. */
  status: string;
}

/** One message of a task's prompt, attributed to its sender and time. */
export interface PromptPart {
  sender: string;
  at: number;
  text: string;
  /** The message's subject as the sender wrote it (an email's); undefined or '': none. */
  subject?: string;
  attachments: Attachment[];
}

export interface TaskRun {
  task: Task;
  conversation: Conversation;
  /** Messages carried by this task, oldest first. */
  parts: PromptPart[];
  /** True when this is the conversation's first task (no session to resume). */
  firstTask: boolean;
  /**
   * The conversation before this task, oldest first: what people wrote and errand replied.
   * Read from the store only when asked (an agent starting over); absent: none recorded.
   */
  history?: () => Promise<HistoryEntry[]>;
}

export interface HistoryEntry {
  role: 'person' | 'agent';
  sender?: string;
  text: string;
}

export type OutcomeKind = 'success' | 'failure' | 'timeout' | 'stopped';

export interface TaskOutcome {
  kind: OutcomeKind;
  /** The text for the thread: the answer, or what happened and what to do next. */
  text: string;
  /** Host paths of files to send back with the reply. */
  files: string[];
  /** The agent's session, to resume on the next task of the conversation. */
  sessionId?: string;
  usage?: TaskUsage;
  /** Short machine-readable detail, e.g. `api_error`, `container_failed`. */
  detail?: string;
  /**
   * Set when the answer is final but the sandbox is still winding down (the agent's
   * process and container exiting). Resolves when it has; never rejects. The executor
   * makes the conversation's next task wait for it.
   */
  settled?: Promise<void>;
}

export interface EventSink {
  /** Records one event of the running task, in order. */
  event(kind: string, data: unknown): Promise<void>;
  /**
   * The agent reported the session it runs in, before the task ends. The gateway keeps it
   * on the conversation at once, so a follow-up after errand died mid-task resumes that
   * session instead of starting one without the thread's context. Called again only when
   * the session changes (a fresh one after a broken resume). Absent: sessions are kept only
   * from the outcome.
   */
  session?(sessionId: string): Promise<void>;
}

/**
 * Runs one task to its end. The real implementation prepares the workspace, starts the
 * sandbox and runs the agent; tests use small in-memory ones.
 * Must return (not throw) for every expected failure; must end promptly when `signal`
 * aborts, with kind `stopped`. A throw is treated as an internal failure.
 */
export interface TaskExecutor {
  run(run: TaskRun, signal: AbortSignal, events: EventSink): Promise<TaskOutcome>;
  /** Removes what the conversation left on the host (workspace, agent state). */
  removeConversation?(conversation: Conversation): Promise<void>;
  /**
   * Kills sandboxes left behind by an earlier process and removes the files and folders it
   * left; called once at start (`errand start` holds the state folder's lock by then).
   */
  cleanupOrphans?(): Promise<void>;
  /** Waits for sandboxes that answered and are still exiting; called on shutdown. */
  settle?(): Promise<void>;
  /** Releases what it keeps ready for the next task; called last on shutdown. */
  close?(): Promise<void>;
  /** The last `limit` requests the conversation's sandboxes made, oldest first. */
  networkLog?(conversation: Conversation, limit: number): Promise<NetworkRequest[]>;
  /** What the repository's default branch puts in effect, for the dashboard. */
  describeRepo?(repoId: string, repo: RepoConfig): Promise<RepoSandboxInfo>;
}

export type { NetworkRequest };

export interface RepoSandboxInfo {
  /** The allowlist file's text on the default branch; undefined: none, or not fetched yet. */
  allowlist?: string;
  defaultBranch?: string;
  /** The last image a task of this repository ran in, since errand started. */
  image?: { ok: boolean; image?: string; built: boolean; at: number };
  /** Why nothing could be read (e.g. the mirror is not fetched yet). */
  note?: string;
}
