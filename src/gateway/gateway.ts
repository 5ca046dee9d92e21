import { EventEmitter } from 'node:events';
import { rm } from 'node:fs/promises';
import { changedRepos, type RepoConfig, type ServerConfig } from '../config/index.ts';
import type {
  ChannelKind,
  Conversation,
  Delivery,
  IncomingMessage,
  StoredMessage,
  Task,
  TaskState,
} from '../domain/index.ts';
import { TERMINAL_TASK_STATES } from '../domain/index.ts';
import type { Store } from '../store/index.ts';
import { describeError } from '../util/errors.ts';
import type { Logger } from '../util/logger.ts';
import { DeliveryQueue } from './delivery-queue.ts';
import type {
  Channel,
  DeliveryContext,
  EventSink,
  HistoryEntry,
  MessageSink,
  NetworkRequest,
  OutcomeKind,
  PlanStep,
  PromptPart,
  RepoSandboxInfo,
  TaskExecutor,
} from './ports.ts';
import { ScheduleTimers, schedulePrompt } from './schedule-runner.ts';
import { TaskQueue } from './task-queue.ts';
import { conversationUrl, formatUsage, notices } from './texts.ts';
import { WorkQueue } from './work-queue.ts';

/** Builds the channels of one repository from its config; called at start and on reload. */
export type ChannelFactory = (repoId: string, repo: RepoConfig) => Channel[];

export interface GatewayOptions {
  store: Store;
  executor: TaskExecutor;
  config: ServerConfig;
  channelFactory: ChannelFactory;
  logger: Logger;
  /** Folder schedule commands run in (the config file's folder). Default: the process's cwd. */
  commandCwd?: string;
  /** Retry timing for replies; tests shorten it. */
  deliveryRetry?: { baseDelayMs?: number; maxAttempts?: number };
  /** How often old conversations are swept. Default: hourly. */
  retentionSweepMs?: number;
}

export type ScheduleRunResult =
  | 'started'
  | 'skipped_running'
  | 'nothing_to_do'
  | 'failed'
  | 'unknown';

/** Why a running task's signal was aborted. */
type AbortReason = { kind: 'stop'; by: string } | { kind: 'shutdown' };

interface RepoEntry {
  config: RepoConfig;
  channels: Map<ChannelKind, Channel>;
  /** A config change waiting for the repository to be idle. */
  pending?: { config: RepoConfig | undefined };
}

export interface StopResult {
  stopped: string[];
}

/** A conversation whose folders could not be deleted: kept, and tried again at each sweep. */
export interface UndeletedConversation {
  conversationId: string;
  repoId: string;
  /** When the first attempt failed (ms since the epoch); reset when errand restarts. */
  since: number;
  attempts: number;
  /** Why the last attempt failed; names no host path and nothing the agent chose. */
  reason: string;
}

export type DeleteResult =
  | { outcome: 'deleted' }
  | { outcome: 'not_found' }
  /** It has queued or running tasks: stop them first. */
  | { outcome: 'busy'; tasks: string[] }
  /** Its folders could not be removed; it is kept and tried again at each sweep. */
  | { outcome: 'failed'; reason: string };

/**
 * Why a conversation could not be removed, for the dashboard and the CLI: what a removal
 * error says (no path, no name of the agent's), else only its errno; the log has the rest.
 */
function removalReason(e: unknown): string {
  const { code } = (e ?? {}) as { code?: unknown };
  if (code === 'tree_not_removed') return (e as Error).message;
  return typeof code === 'string' && /^E[A-Z]+$/.test(code)
    ? `removing it failed (${code})`
    : 'removing it failed; the service log says why';
}

/**
 * Turns stored messages into serialized, recoverable tasks. Every message it stores ends
 * answered, rejected, merged or interrupted-and-reported; see docs/gateway.md.
 */
export class Gateway {
  readonly events = new EventEmitter();
  readonly #store: Store;
  readonly #executor: TaskExecutor;
  readonly #channelFactory: ChannelFactory;
  readonly #log: Logger;
  #config: ServerConfig;
  #repos = new Map<string, RepoEntry>();
  #queue: TaskQueue;
  #running = new Map<
    string,
    { controller: AbortController; done: Promise<void>; repoId: string }
  >();
  // Messages of one repository and channel are taken in order, so two messages of a new
  // thread cannot open two conversations. Only ids wait here; each is read back when its
  // turn comes.
  #intake = new WorkQueue<string>((id) => this.#intakeById(id));
  #deliveries: DeliveryQueue;
  /** Pending deliveries found at start: the errand before may have sent them. */
  #inherited = new Set<string>();
  #accepting = false;
  #closed = false;
  #timers: ScheduleTimers;
  #sweepTimer?: NodeJS.Timeout;
  readonly #commandCwd: string;
  readonly #retentionSweepMs: number;
  /** Conversations whose removal failed, by id, until one succeeds. */
  readonly #undeleted = new Map<string, UndeletedConversation>();
  readonly #removing = new Map<string, Promise<DeleteResult>>();

  constructor(opts: GatewayOptions) {
    this.#store = opts.store;
    this.#executor = opts.executor;
    this.#channelFactory = opts.channelFactory;
    this.#log = opts.logger;
    this.#config = opts.config;
    this.#queue = new TaskQueue(opts.config.execution.max_concurrent);
    this.#deliveries = new DeliveryQueue({
      store: this.#store,
      logger: this.#log,
      send: (d) => this.#send(d),
      inFlight: opts.config.execution.deliveries_in_flight,
      ...opts.deliveryRetry,
    });
    this.#timers = new ScheduleTimers((repo, name) => void this.runSchedule(repo, name), this.#log);
    this.#commandCwd = opts.commandCwd ?? process.cwd();
    this.#retentionSweepMs = opts.retentionSweepMs ?? 3_600_000;
    this.events.setMaxListeners(0);
  }

  /** The store, for read-only views (dashboard, status). */
  get store(): Store {
    return this.#store;
  }

  get config(): ServerConfig {
    return this.#config;
  }

  /**
   * Recovers what an earlier process left (running tasks become interrupted and reported,
   * queued tasks wait again, received messages are processed, pending replies are sent),
   * then starts every channel.
   */
  async start(): Promise<void> {
    await this.#executor.cleanupOrphans?.();
    for (const [id, repo] of Object.entries(this.#config.repos)) {
      this.#repos.set(id, { config: repo, channels: this.#makeChannels(id, repo) });
    }
    await this.#recover();
    this.#accepting = true;
    for (const entry of this.#repos.values()) await this.#startChannels(entry);
    this.#pump();
    this.#timers.apply(this.#config);
    void this.sweepRetention();
    this.#sweepTimer = setInterval(() => void this.sweepRetention(), this.#retentionSweepMs);
    this.#sweepTimer.unref();
  }

  /**
   * Stores a message and answers once it is durable; processing continues in the
   * background. Throws when the message could not be stored, so the channel does not
   * acknowledge it.
   */
  async receive(msg: IncomingMessage): Promise<{ messageId: string; duplicate: boolean }> {
    if (!this.#accepting) throw new Error('errand is shutting down; the message was not taken');
    const { message, duplicate } = await this.#store.insertMessage(msg);
    if (!duplicate) {
      this.events.emit('message', message);
      this.#process(message);
    }
    return { messageId: message.id, duplicate };
  }

  /**
   * Stops a task, or every unfinished task of a conversation. A queued task is dropped
   * and its thread told; a running one has its sandbox killed and its thread told.
   */
  async stop(id: string, by: string): Promise<StopResult> {
    const tasks: Task[] = [];
    if (id.startsWith('c_')) {
      tasks.push(
        ...(await this.#store.listTasks({ conversationId: id, states: ['queued', 'running'] })),
      );
    } else {
      const task = await this.#store.getTask(id);
      if (task && (task.state === 'queued' || task.state === 'running')) tasks.push(task);
    }
    const stopped: string[] = [];
    for (const task of tasks) {
      const running = this.#running.get(task.id);
      if (running) {
        running.controller.abort({ kind: 'stop', by } satisfies AbortReason);
        await running.done;
        stopped.push(task.id);
      } else if (this.#queue.remove(task.id) || task.state === 'queued') {
        await this.#finish(
          task,
          'stopped',
          { kind: 'stopped', text: notices.stoppedBeforeStart(by) },
          `stopped by ${by}`,
        );
        stopped.push(task.id);
      }
    }
    return { stopped };
  }

  /** Applies a new config: global limits at once, each repository once it is idle. */
  async applyConfig(next: ServerConfig): Promise<void> {
    const { added, removed, changed } = changedRepos(this.#config, next);
    this.#config = next;
    this.#queue.limit = next.execution.max_concurrent;
    this.#deliveries.inFlight = next.execution.deliveries_in_flight;
    if (!this.#closed) this.#timers.apply(next);
    for (const id of added) {
      const entry: RepoEntry = {
        config: next.repos[id]!,
        channels: this.#makeChannels(id, next.repos[id]!),
      };
      this.#repos.set(id, entry);
      if (this.#accepting) await this.#startChannels(entry);
      this.#log.info({ repo: id }, 'repository added');
    }
    for (const id of [...removed, ...changed]) {
      const entry = this.#repos.get(id);
      if (!entry) continue;
      entry.pending = { config: next.repos[id] };
      await this.#applyPendingIfIdle(id);
    }
    this.#pump();
  }

  /** Running and queued work, for status displays. */
  async status(): Promise<{ running: Task[]; queued: Task[] }> {
    const [running, queued] = await Promise.all([
      this.#store.listTasks({ states: ['running'] }),
      this.#store.listTasks({ states: ['queued'] }),
    ]);
    return { running, queued };
  }

  channelsOf(repoId: string): Channel[] {
    return [...(this.#repos.get(repoId)?.channels.values() ?? [])];
  }

  /** The last `limit` requests of a conversation's sandboxes; empty when none are recorded. */
  async networkLog(conversation: Conversation, limit = 500): Promise<NetworkRequest[]> {
    return (await this.#executor.networkLog?.(conversation, limit)) ?? [];
  }

  /** What the repository's default branch puts in effect; undefined for unknown repos. */
  async describeRepo(repoId: string): Promise<RepoSandboxInfo | undefined> {
    const repo = this.#config.repos[repoId];
    if (!repo) return undefined;
    return (await this.#executor.describeRepo?.(repoId, repo)) ?? {};
  }

  /**
   * Stops taking messages, lets running tasks finish within the grace period, interrupts
   * the rest (reported to their threads), flushes replies briefly, then stops channels.
   */
  async shutdown(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#accepting = false;
    this.#timers.stop();
    clearInterval(this.#sweepTimer);
    this.#queue.limit = 0;
    const graceMs = this.#config.execution.shutdown_grace_seconds * 1000;
    const all = () => Promise.all([...this.#running.values()].map((r) => r.done));
    if (this.#running.size > 0) {
      this.#log.info({ running: this.#running.size, graceMs }, 'waiting for running tasks');
      const timedOut = await raceTimeout(all(), graceMs);
      if (timedOut) {
        for (const r of this.#running.values())
          r.controller.abort({ kind: 'shutdown' } satisfies AbortReason);
        await all();
      }
    }
    await this.#intake.idle();
    await Promise.all([
      this.#deliveries.flush(5000),
      raceTimeout(this.#executor.settle?.() ?? Promise.resolve(), 10_000),
    ]);
    this.#deliveries.close();
    for (const entry of this.#repos.values()) await this.#stopChannels(entry);
    await this.#executor.close?.().catch(() => undefined);
  }

  /**
   * Runs a schedule now (its cron timer calls this too). Skipped, and logged, while the
   * schedule's previous run is queued or running; a command with empty output means there
   * is nothing to do.
   */
  async runSchedule(repoId: string, name: string): Promise<ScheduleRunResult> {
    const entry = this.#repos.get(repoId);
    const schedule = entry?.config.schedules?.[name];
    if (!entry || !schedule || !this.#accepting) return 'unknown';
    const scheduleId = `${repoId}/${name}`;
    const log = this.#log.child({ repo: repoId, schedule: name });
    const unfinished = await this.#store.listTasks({
      scheduleId,
      states: ['queued', 'running'],
      limit: 1,
    });
    if (unfinished.length > 0) {
      log.info({ task: unfinished[0]!.id }, 'schedule skipped: its previous run is still going');
      return 'skipped_running';
    }
    const prompt = await schedulePrompt(schedule, this.#commandCwd);
    if (prompt.kind === 'nothing') {
      log.info('schedule ran: command printed nothing, so there is nothing to do');
      return 'nothing_to_do';
    }
    if (prompt.kind === 'failed') {
      log.error({ reason: prompt.reason }, 'schedule failed');
      return 'failed';
    }
    const channel = entry.channels.get(schedule.channel);
    if (!channel?.openThread) {
      log.error({ channel: schedule.channel }, 'schedule failed: its channel cannot open a thread');
      return 'failed';
    }
    try {
      const title = `Scheduled: ${name}`;
      const threadKey = await channel.openThread({ to: schedule.to, title });
      const now = Date.now();
      await this.receive({
        repoId,
        channel: 'schedule',
        externalId: `${scheduleId}@${now}`,
        threadKeys: [threadKey],
        ownThreadKey: threadKey,
        sender: { id: 'schedule', name: `schedule ${name}` },
        subject: title,
        text: prompt.text,
        attachments: [],
        receivedAt: now,
        meta: { channel: schedule.channel, scheduleId, to: schedule.to },
      });
      log.info('schedule started a task');
      return 'started';
    } catch (e) {
      log.error({ err: describeError(e) }, 'schedule failed');
      return 'failed';
    }
  }

  /**
   * Removes conversations idle longer than the retention period, with their workspaces,
   * oldest first. One that cannot be removed is kept, shown in undeletedConversations()
   * and tried again at the next sweep; the others still go. Returns how many went.
   */
  async sweepRetention(): Promise<number> {
    const cutoff = Date.now() - this.#config.execution.retention_days * 86_400_000;
    let removed = 0;
    let idle: Conversation[] = [];
    try {
      idle = await this.#store.listIdleConversationsBefore(cutoff);
    } catch (e) {
      this.#log.error(
        { err: describeError(e) },
        'retention sweep failed: the store could not list conversations',
      );
    }
    for (const c of idle) {
      if (this.#queue.isRunning(c.id)) continue;
      if ((await this.#removeConversation(c)).outcome === 'deleted') removed++;
    }
    if (removed > 0) this.#log.info({ removed }, 'old conversations removed');
    return removed;
  }

  /**
   * Deletes a conversation now, as retention would (`errand conversations delete`): its
   * folders, files, messages and tasks. One with a queued or running task is left alone
   * (stop it first); one whose folders cannot be removed is kept, as by retention.
   */
  async deleteConversation(id: string): Promise<DeleteResult> {
    const c = await this.#store.getConversation(id);
    if (!c) return { outcome: 'not_found' };
    const busy = await this.#store.listTasks({ conversationId: id, states: ['queued', 'running'] });
    if (busy.length || this.#queue.isRunning(id))
      return { outcome: 'busy', tasks: busy.map((t) => t.id) };
    return await this.#removeConversation(c);
  }

  /** Conversations whose folders could not be deleted, oldest failure first (for health). */
  undeletedConversations(): UndeletedConversation[] {
    return [...this.#undeleted.values()];
  }

  #removeConversation(c: Conversation): Promise<DeleteResult> {
    // A sweep and an explicit delete of one conversation share one removal.
    const running = this.#removing.get(c.id);
    if (running) return running;
    const p = this.#remove(c).finally(() => this.#removing.delete(c.id));
    this.#removing.set(c.id, p);
    return p;
  }

  async #remove(c: Conversation): Promise<DeleteResult> {
    try {
      // Off its threads first: a message arriving while the folders go opens a new
      // conversation, and no task is queued into (nor run on) the one being removed. A task
      // queued since the sweep listed it keeps it.
      const busy = await this.#store.detachConversation(c.id);
      if (busy.length) return { outcome: 'busy', tasks: busy };
      await this.#executor.removeConversation?.(c);
      // Files channels saved for its messages (mail attachments, Slack files).
      for (const m of await this.#store.listMessages({ conversationId: c.id })) {
        for (const a of m.attachments) await rm(a.path, { force: true });
      }
      await this.#store.deleteConversation(c.id);
    } catch (e) {
      // Kept for the next sweep; the others still go. A rootless sandbox can leave
      // files owned by a uid errand's user cannot act for (see docs/sandbox.md).
      const reason = removalReason(e);
      const was = this.#undeleted.get(c.id);
      this.#undeleted.set(c.id, {
        conversationId: c.id,
        repoId: c.repoId,
        since: was?.since ?? Date.now(),
        attempts: (was?.attempts ?? 0) + 1,
        reason,
      });
      this.#log.error(
        { conversation: c.id, err: describeError(e), left: (e as { example?: unknown }).example },
        'conversation not removed: its folders could not be deleted; it is tried again at the next retention sweep',
      );
      return { outcome: 'failed', reason };
    }
    this.#undeleted.delete(c.id);
    return { outcome: 'deleted' };
  }

  // ---- intake -------------------------------------------------------------------------

  #process(message: Pick<StoredMessage, 'id' | 'repoId' | 'channel'>): void {
    this.#intake.push(`${message.repoId}\0${message.channel}`, message.id);
  }

  async #intakeById(id: string): Promise<void> {
    try {
      const message = await this.#store.getMessage(id);
      if (message?.state === 'received') await this.#intakeOne(message);
    } catch (e) {
      // The message stays `received`; the next start processes it again.
      this.#log.error({ message: id, err: describeError(e) }, 'message intake failed');
    }
  }

  async #intakeOne(message: StoredMessage): Promise<void> {
    const entry = this.#repos.get(message.repoId);
    const scheduled = message.channel === 'schedule';
    const replyChannel = scheduled ? (message.meta?.channel as ChannelKind) : message.channel;
    const channel = entry?.channels.get(replyChannel);
    if (!entry || !channel) {
      await this.#reject(
        message,
        `no ${replyChannel} channel is configured for repository ${message.repoId}`,
      );
      return;
    }
    if (!scheduled) {
      const auth = await channel.authorize(message);
      if (!auth.ok) {
        // The sender learns nothing (no reply, no sign a repository or agent exists) unless
        // the channel vouches for them and has something to say, like a size limit.
        const notice = await this.#reject(message, auth.reason, auth.notice);
        if (notice) this.#deliveries.enqueue(notice);
        return;
      }
    }
    // One transaction: a crash before it leaves the message `received` (filed again at the
    // next start), after it the acknowledgement and the task are pending and queued in the
    // store, which the next start sends and runs (#recover).
    const filed = await this.#store.fileMessage(message.id, {
      channel: replyChannel,
      title: titleOf(message),
      model: message.model ?? entry.config.model,
      scheduleId: scheduled ? String(message.meta?.scheduleId) : undefined,
      ack: !scheduled && channel.acknowledgesNewConversations ? notices.acknowledged() : undefined,
    });
    // Filed before: its task and acknowledgement were queued then, or by #recover since.
    if (filed.repeated) return;
    const { task, conversation } = filed;
    this.events.emit('task', task);
    if (filed.ack) this.#deliveries.enqueue(filed.ack);
    if (!filed.merged) {
      this.#queue.push({ taskId: task.id, conversationId: conversation.id, repoId: task.repoId });
      this.#pump();
    }
  }

  /** Rejects a message; a notice for its sender is recorded in the same write. */
  async #reject(
    message: StoredMessage,
    reason: string,
    notice?: string,
  ): Promise<Delivery | undefined> {
    const created = await this.#store.rejectMessage(
      message.id,
      reason,
      notice === undefined
        ? undefined
        : { repoId: message.repoId, channel: message.channel, text: notice },
    );
    this.#log.warn(
      { message: message.id, repo: message.repoId, channel: message.channel, reason },
      'message rejected',
    );
    return created;
  }

  // ---- running ------------------------------------------------------------------------

  #pump(): void {
    for (const next of this.#queue.take()) {
      const controller = new AbortController();
      const done = this.#run(next.taskId, controller.signal).finally(() => {
        this.#running.delete(next.taskId);
        this.#queue.done(next.conversationId);
        void this.#applyPendingIfIdle(next.repoId).finally(() => this.#pump());
      });
      this.#running.set(next.taskId, { controller, done, repoId: next.repoId });
    }
  }

  async #run(taskId: string, signal: AbortSignal): Promise<void> {
    const task = await this.#store.getTask(taskId);
    if (task?.state !== 'queued') return;
    const conversation = (await this.#store.getConversation(task.conversationId))!;
    const startedAt = Date.now();
    await this.#store.updateTask(task.id, { state: 'running', startedAt });
    const running: Task = { ...task, state: 'running', startedAt };
    this.events.emit('task', running);
    const messages = await this.#store.listMessages({ taskId: task.id });
    const parts: PromptPart[] = messages
      .sort((a, b) => a.receivedAt - b.receivedAt)
      .map((m) => ({
        sender: m.sender.name ?? m.sender.id,
        at: m.receivedAt,
        text: m.text,
        subject: m.subject,
        attachments: m.attachments,
      }));
    const history = () => this.#history(conversation.id);
    const channel = this.#repos.get(task.repoId)?.channels.get(conversation.channel);
    let sessionId = conversation.sessionId;
    // Stored when the agent names it, before the task ends: if errand dies mid-task, the
    // follow-up in the thread resumes this session (docs/gateway.md, restart recovery).
    const keepSession = async (id: string | undefined) => {
      if (!id || id === sessionId) return;
      await this.#store.updateConversation(conversation.id, { sessionId: id });
      sessionId = id;
    };
    const events: EventSink = {
      session: keepSession,
      event: async (kind: string, data: unknown) => {
        const ev = await this.#store.appendEvent(task.id, kind, data);
        this.events.emit('event', ev);
        const items = kind === 'plan' ? (data as { items?: PlanStep[] }).items : undefined;
        if (items && channel?.progress) {
          channel.progress(conversation, running, items).catch((e: unknown) => {
            this.#log.warn({ task: task.id, err: describeError(e) }, 'progress update failed');
          });
        }
      },
    };
    let outcome: Awaited<ReturnType<TaskExecutor['run']>>;
    try {
      outcome = await this.#executor.run(
        { task: running, conversation, parts, firstTask: !conversation.sessionId, history },
        signal,
        events,
      );
    } catch (e) {
      this.#log.error({ task: task.id, err: describeError(e) }, 'task executor failed');
      outcome = { kind: 'failure', text: notices.internalFailure(), files: [], detail: 'internal' };
    }
    await keepSession(outcome.sessionId);
    const reason = signal.aborted ? (signal.reason as AbortReason) : undefined;
    if (reason?.kind === 'shutdown') {
      await this.#finish(
        running,
        'interrupted',
        { kind: 'interrupted', text: notices.interruptedByShutdown(), files: outcome.files },
        'errand shut down',
        outcome,
      );
    } else if (reason?.kind === 'stop') {
      await this.#finish(
        running,
        'stopped',
        { kind: 'stopped', text: notices.stopped(reason.by, outcome.text), files: outcome.files },
        `stopped by ${reason.by}`,
        outcome,
      );
    } else {
      const state: TaskState = outcome.kind === 'success' ? 'done' : 'failed';
      await this.#finish(
        running,
        state,
        {
          kind: outcome.kind === 'success' ? 'reply' : 'error',
          text: outcome.text,
          files: outcome.files,
        },
        outcome.detail ?? outcome.kind,
        outcome,
      );
    }
  }

  /**
   * What was said in the conversation before this task: for an agent that must start over.
   * The messages of tasks that ended, interrupted ones included (errand died under them,
   * the person still wrote them); not those waiting for a later task, which that task
   * carries itself.
   */
  async #history(conversationId: string): Promise<HistoryEntry[]> {
    const [messages, deliveries, ended] = await Promise.all([
      this.#store.listMessages({ conversationId }),
      this.#store.listDeliveries({ conversationId }),
      this.#store.listTasks({ conversationId, states: [...TERMINAL_TASK_STATES] }),
    ]);
    const earlier = new Set(ended.map((t) => t.id));
    return [
      ...messages
        .filter((m) => m.taskId && earlier.has(m.taskId) && m.state !== 'rejected')
        .map((m) => ({
          at: m.receivedAt,
          role: 'person' as const,
          sender: m.sender.name ?? m.sender.id,
          text: m.text,
        })),
      ...deliveries
        .filter((d) => d.kind === 'reply')
        .map((d) => ({ at: d.createdAt, role: 'agent' as const, text: d.text })),
    ]
      .sort((a, b) => a.at - b.at)
      .map(({ at: _at, ...h }) => h);
  }

  async #finish(
    task: Task,
    state: TaskState,
    delivery: { kind: Delivery['kind']; text: string; files?: string[] },
    outcomeText: string,
    outcome?: { usage?: Task['usage']; kind?: OutcomeKind },
  ): Promise<void> {
    const conversation = await this.#store.getConversation(task.conversationId);
    const first = (await this.#store.listMessages({ taskId: task.id }))[0];
    const created = await this.#store.finishTask(task.id, {
      state,
      outcome: outcomeText,
      usage: outcome?.usage,
      messageState: state === 'interrupted' ? 'interrupted' : 'answered',
      reason: state === 'interrupted' ? outcomeText : undefined,
      delivery: {
        repoId: task.repoId,
        channel: conversation?.channel ?? first?.channel ?? 'web',
        conversationId: task.conversationId,
        taskId: task.id,
        messageId: first?.id,
        kind: delivery.kind,
        text: delivery.text,
        files: delivery.files ?? [],
      },
    });
    this.events.emit('task', { ...task, state, finishedAt: Date.now(), outcome: outcomeText });
    if (created) this.#deliveries.enqueue(created);
  }

  async #send(d: Delivery): Promise<void> {
    const channel = this.#repos.get(d.repoId)?.channels.get(d.channel);
    if (!channel)
      throw new Error(`no ${d.channel} channel is configured for repository ${d.repoId}`);
    await channel.deliver(d, await this.#deliveryContext(d));
    this.#inherited.delete(d.id);
    this.events.emit('delivery', d);
  }

  async #deliveryContext(d: Delivery): Promise<DeliveryContext> {
    const [conversation, replyTo, task] = await Promise.all([
      d.conversationId ? this.#store.getConversation(d.conversationId) : undefined,
      d.messageId ? this.#store.getMessage(d.messageId) : undefined,
      d.taskId && d.kind === 'reply' ? this.#store.getTask(d.taskId) : undefined,
    ]);
    const baseUrl = this.#config.dashboard.base_url;
    const wantsFooter = this.#repos.get(d.repoId)?.config.usage_footer;
    return {
      conversation,
      replyTo,
      footer: wantsFooter && task?.usage ? formatUsage(task.usage) : undefined,
      link: baseUrl && conversation ? conversationUrl(baseUrl, conversation.id) : undefined,
      mayHaveBeenSent: d.attempts > 0 || this.#inherited.has(d.id),
    };
  }

  // ---- recovery -----------------------------------------------------------------------

  // A backlog left by the last process is queued by reference: each message and delivery
  // is read in full when its turn comes, not all at once here.
  async #recover(): Promise<void> {
    for (const d of await this.#store.listDeliveryRefs({ states: ['pending'] })) {
      this.#inherited.add(d.id);
      this.#deliveries.enqueue(d);
    }
    for (const task of await this.#store.listTasks({ states: ['running'] })) {
      this.#log.warn(
        { task: task.id },
        'task was running when errand stopped; reporting it as interrupted',
      );
      await this.#finish(
        task,
        'interrupted',
        { kind: 'interrupted', text: notices.interruptedByRestart() },
        'errand restarted',
      );
    }
    for (const task of await this.#store.listTasks({ states: ['queued'] })) {
      this.#queue.push({
        taskId: task.id,
        conversationId: task.conversationId,
        repoId: task.repoId,
      });
    }
    for (const message of await this.#store.listMessageRefs({ states: ['received'] }))
      this.#process(message);
  }

  // ---- repositories and reload --------------------------------------------------------

  #makeChannels(repoId: string, repo: RepoConfig): Map<ChannelKind, Channel> {
    return new Map(this.#channelFactory(repoId, repo).map((c) => [c.kind, c]));
  }

  async #startChannels(entry: RepoEntry): Promise<void> {
    for (const channel of entry.channels.values()) {
      try {
        await channel.start(this.#sinkFor(channel));
      } catch (e) {
        // One broken channel must not keep the others (or other repositories) down; its
        // health shows the failure.
        this.#log.error(
          { repo: channel.repoId, channel: channel.kind, err: describeError(e) },
          'channel failed to start',
        );
      }
    }
  }

  // Each channel gets a sink that accepts only its own repository and kind: a channel
  // cannot speak for another repository, nor pose as the scheduler.
  #sinkFor(channel: Channel): MessageSink {
    return {
      receive: async (msg) => {
        if (this.#repos.get(channel.repoId)?.channels.get(channel.kind) !== channel) {
          throw new Error(`the ${channel.kind} channel of ${channel.repoId} is no longer active`);
        }
        if (msg.repoId !== channel.repoId || msg.channel !== channel.kind) {
          throw new Error(
            `a ${channel.kind} channel of ${channel.repoId} handed over a message for ${msg.channel} of ${msg.repoId}`,
          );
        }
        return await this.receive(msg);
      },
      hasConversation: async (threadKey) =>
        (await this.#store.findConversationByThread(channel.repoId, channel.kind, threadKey)) !==
        undefined,
    };
  }

  async #stopChannels(entry: RepoEntry): Promise<void> {
    for (const channel of entry.channels.values()) {
      try {
        await channel.stop();
      } catch (e) {
        this.#log.warn(
          { repo: channel.repoId, channel: channel.kind, err: describeError(e) },
          'channel failed to stop',
        );
      }
    }
  }

  #repoBusy(repoId: string): boolean {
    for (const r of this.#running.values()) if (r.repoId === repoId) return true;
    return this.#queue.waitingFor(repoId) > 0;
  }

  async #applyPendingIfIdle(repoId: string): Promise<void> {
    const entry = this.#repos.get(repoId);
    if (!entry?.pending || this.#repoBusy(repoId)) return;
    const next = entry.pending.config;
    entry.pending = undefined;
    await this.#stopChannels(entry);
    if (!next) {
      this.#repos.delete(repoId);
      this.#log.info({ repo: repoId }, 'repository removed');
      return;
    }
    entry.config = next;
    entry.channels = this.#makeChannels(repoId, next);
    if (this.#accepting) await this.#startChannels(entry);
    this.#log.info({ repo: repoId }, 'repository config applied');
  }
}

function titleOf(message: IncomingMessage): string {
  const source = message.subject?.trim() || message.text.trim().split('\n', 1)[0] || 'Untitled';
  return source.length > 80 ? `${source.slice(0, 79)}…` : source;
}

/** Resolves true when `ms` passed before `p` settled. */
async function raceTimeout(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), ms);
  });
  try {
    return await Promise.race([p.then(() => false), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
