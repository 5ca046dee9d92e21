import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { RepoConfig, ServerConfig } from '../config/index.ts';
import type { Conversation } from '../domain/index.ts';
import type {
  EventSink,
  NetworkRequest,
  RepoSandboxInfo,
  TaskExecutor,
  TaskOutcome,
  TaskRun,
} from '../gateway/index.ts';
import {
  ALLOWLIST_FILE,
  type Allowlist,
  CertificateAuthority,
  fileNetworkLog,
  filterModelRequest,
  hostsOpenToGet,
  openTaskNetwork,
  ProxyServer,
  parseAllowlist,
  type TaskNetwork,
} from '../proxy/index.ts';
import {
  type AcceptConnection,
  BASE_IMAGE,
  CA_CERT,
  type ContainerFile,
  DEFAULT_CLAUDE_CODE_VERSION,
  ensurePodmanEnv,
  openSandboxNetns,
  PodmanSandbox,
  parseSandboxFile,
  type SandboxDriver,
  type SandboxFile,
  type SandboxMount,
  type SandboxNetns,
  type SandboxNetwork,
  sandboxFileSchema,
  WarmNetns,
} from '../sandbox/index.ts';
import { describeError, isErrandError } from '../util/errors.ts';
import { safeFileName } from '../util/file-names.ts';
import type { Logger } from '../util/logger.ts';
import { readRegularFile, writeNewFile } from '../util/no-follow-files.ts';
import { ownedName, removeLeftBehind } from '../util/owned-names.ts';
import { removeTree } from '../util/remove-tree.ts';
import {
  type ConversationDirs,
  clearOutbox,
  describeSkipped,
  type MirrorState,
  takeOutbox,
  type WorkspaceRepo,
  Workspaces,
} from '../workspace/index.ts';
import { type AgentRunner, SANDBOX_PATHS, type SandboxExecRequest } from './agent-seam.ts';
import { type Held, HeldSandboxes } from './held-sandboxes.ts';

export interface SandboxExecutorOptions {
  config: () => ServerConfig;
  workspaces: Workspaces;
  driver: SandboxDriver;
  proxy: ProxyServer;
  /** The CA certificate (PEM) sandboxes behind the proxy trust; each gets its own copy. */
  caCert: string;
  /** Where image build contexts are written (under the state folder; 0700). */
  buildDir: string;
  /**
   * Where the files of each reply are copied from the outbox, as
   * `<conversationId>/<taskId>/<name>`; no sandbox mounts it. Deliveries name these copies.
   */
  deliveriesDir: string;
  podmanEnv: NodeJS.ProcessEnv;
  agent: AgentRunner;
  logger: Logger;
  /** Keeps a sandbox network started ahead of the next task; absent: one starts per task. */
  warmNetns?: WarmNetns;
  /**
   * Holds started sandboxes for each conversation's next task and each repository's next
   * new conversation (when the config's execution.hold_sandbox is on and warmNetns is
   * given); default false.
   */
  holdSandboxes?: boolean;
}

/**
 * How long a sandbox may go on after its answer. The CLI exits within a few seconds; an
 * agent that wrote a result line of its own into the CLI's output and kept working would
 * otherwise run on past its task, uncounted by max_concurrent, until its time limit.
 */
export const WIND_DOWN_MS = 10_000;

/** How long a held sandbox waits for its task before it is discarded. */
const HOLD_MAX_IDLE_MS = 10 * 60_000;

const SANDBOX_FILE = '.errand/sandbox.yaml';
const CONTAINER_DIR = '.errand/container';

/** An expected failure before the agent starts: said to the thread as is. */
class Unready extends Error {
  readonly detail: string;
  constructor(detail: string, message: string) {
    super(message);
    this.detail = detail;
  }
}

/**
 * A trusted file that cannot be read as one (a link, a folder, over the size limit) is
 * the repository's to fix, like one that does not parse; anything else stays a fault.
 */
function unreadable(e: unknown, detail: string, where: string): unknown {
  if (isErrandError(e) && e.code === 'trusted_file_invalid')
    return new Unready(detail, `${where} is invalid: ${e.message} Fix it by pull request.`);
  return e;
}

function repoOf(id: string, r: RepoConfig): WorkspaceRepo {
  return { id, gitUrl: r.git_url, defaultBranch: r.default_branch };
}

/** Runs a task's cleanup steps, the last registered first; one failing stops none. */
async function runCleanup(cleanup: Array<() => Promise<void> | void>): Promise<void> {
  for (const c of cleanup.reverse()) await Promise.resolve(c()).catch(() => undefined);
}

function claudeVersion(r: RepoConfig): string {
  return r.agent.claude_code_version ?? DEFAULT_CLAUDE_CODE_VERSION;
}

function sandboxLimits(l: { memory: string; cpus: number; pids: number }) {
  return { memory: l.memory, cpus: l.cpus, pids: l.pids };
}

/** Everything a held sandbox was started with that a task decides too. */
function heldKey(image: string, limits: object, claudeCodeVersion: string): string {
  return JSON.stringify({ image, limits, claudeCodeVersion });
}

/** The smaller of two optional limits: the repository may tighten the operator's, not loosen. */
function lower<T extends number>(a: T, b: T | undefined): T {
  return b !== undefined && b < a ? b : a;
}

function bytes(size: string): number {
  const m = /^(\d+)([bkmg]?)$/i.exec(size)!;
  return (
    Number(m[1]) *
    { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[
      m[2]!.toLowerCase() as '' | 'b' | 'k' | 'm' | 'g'
    ]
  );
}

/**
 * The real task executor: refreshes the mirror, reads the trusted `.errand/` files of the
 * default branch, builds the image, opens the conversation's workspace, starts the network
 * (proxy session and private namespace), and hands the agent a way to run commands in that
 * sandbox. Everything the agent could change is read from the default branch, never from
 * the workspace.
 */
export class SandboxExecutor implements TaskExecutor {
  readonly #o: SandboxExecutorOptions;
  readonly #lastImage = new Map<string, NonNullable<RepoSandboxInfo['image']>>();
  /**
   * Sandboxes that answered and are still running, by conversation: until gone, and how
   * to stop one (a deleted conversation's, whose folders must not go from under it).
   */
  readonly #settling = new Map<string, { done: Promise<void>; stop: () => void }>();

  /** Per repository, for its next new conversation. */
  readonly #heldNew: HeldSandboxes | undefined;
  /** Per conversation, for its next task: at most as many as may run at once. */
  readonly #heldNext: HeldSandboxes | undefined;

  constructor(o: SandboxExecutorOptions) {
    this.#o = o;
    const keep = (max?: number) =>
      new HeldSandboxes({ maxIdleMs: HOLD_MAX_IDLE_MS, max, discard: (h) => this.#discardHeld(h) });
    const on = o.holdSandboxes && o.warmNetns;
    this.#heldNew = on ? keep() : undefined;
    this.#heldNext = on ? keep(o.config().execution.max_concurrent) : undefined;
  }

  /**
   * The executor of one installation on this host: mirrors, the proxy's CA and build
   * contexts under `stateDir`, podman sandboxes, the Claude Code CLI cached in `cacheDir`.
   * What sandboxes mount (conversation folders, copies of errand's files and the CLI) is
   * under `sandboxDir`, so a sandbox's mount table names no path of the others.
   */
  static async onHost(o: {
    stateDir: string;
    sandboxDir: string;
    cacheDir: string;
    imageMaxAgeMs: number;
    config: () => ServerConfig;
    agent: AgentRunner;
    logger: Logger;
    /** Default: `<stateDir>/deliveries`. */
    deliveriesDir?: string;
  }): Promise<SandboxExecutor> {
    const caDir = join(o.stateDir, 'proxy', 'ca');
    const ca = await CertificateAuthority.loadOrCreate(caDir);
    const podmanEnv = await ensurePodmanEnv(o.stateDir);
    return new SandboxExecutor({
      config: o.config,
      workspaces: new Workspaces({
        root: join(o.stateDir, 'workspaces'),
        conversations: join(o.sandboxDir, 'conversations'),
      }),
      driver: new PodmanSandbox({
        stateDir: o.stateDir,
        cacheDir: o.cacheDir,
        sandboxDir: o.sandboxDir,
        imageMaxAgeMs: o.imageMaxAgeMs,
      }),
      proxy: new ProxyServer({ ca }),
      caCert: ca.certPem,
      buildDir: join(o.stateDir, 'build'),
      deliveriesDir: o.deliveriesDir ?? join(o.stateDir, 'deliveries'),
      podmanEnv,
      warmNetns: new WarmNetns(podmanEnv),
      holdSandboxes: true,
      agent: o.agent,
      logger: o.logger,
    });
  }

  get workspaces(): Workspaces {
    return this.#o.workspaces;
  }

  get driver(): SandboxDriver {
    return this.#o.driver;
  }

  /** Where reply files are copied to (see SandboxExecutorOptions.deliveriesDir). */
  get deliveriesDir(): string {
    return this.#o.deliveriesDir;
  }

  async run(run: TaskRun, signal: AbortSignal, events: EventSink): Promise<TaskOutcome> {
    const repoId = run.task.repoId;
    const repoConfig = this.#o.config().repos[repoId];
    if (!repoConfig)
      return {
        kind: 'failure',
        text: `Repository ${repoId} is no longer configured.`,
        files: [],
        detail: 'repo_removed',
      };
    // The conversation's previous sandbox may still be winding down; its workspace and
    // agent state are not to be touched before it is gone.
    await this.#settling.get(run.conversation.id)?.done;
    // Aborts the sandbox after the answer too, when it goes on running (the CLI winding
    // down, or an agent that wrote a result line of its own into the CLI's output).
    const windDown = new AbortController();
    const sandboxSignal = AbortSignal.any([signal, windDown.signal]);
    const cleanup: Array<() => Promise<void> | void> = [];
    let settled: Promise<void> | undefined;
    let ran = false;
    try {
      const prepared = await this.#prepare(run, repoId, repoConfig, events, cleanup);
      ran = true;
      const timeoutMs = prepared.limits.timeout_seconds * 1000;
      // The held sandbox serves the task's first command; a second (a fresh session after
      // a broken one) gets a sandbox of its own, like every command without one.
      let held = prepared.held;
      cleanup.push(() => held?.discard());
      const exec = (req: SandboxExecRequest) => {
        const h = held;
        held = undefined;
        const env = { ...prepared.env, ...req.env };
        if (h?.ready)
          return h.run({
            command: req.command,
            env,
            timeoutMs,
            stdin: req.stdin,
            signal: sandboxSignal,
            onStdout: req.onStdout,
            onStderr: req.onStderr,
          });
        if (h) void h.discard();
        return this.#o.driver.run({
          taskId: run.task.id,
          image: prepared.image,
          command: req.command,
          mounts: prepared.mounts,
          files: prepared.files,
          env,
          limits: sandboxLimits(prepared.limits),
          network: prepared.network,
          timeoutMs,
          claudeCodeVersion: claudeVersion(repoConfig),
          stdin: req.stdin,
          signal: sandboxSignal,
          onStdout: req.onStdout,
          onStderr: req.onStderr,
        });
      };
      const outcome = await this.#o.agent.run(
        {
          run,
          exec,
          outbox: prepared.outbox,
          model: run.conversation.model ?? repoConfig.model,
          effort: repoConfig.agent.effort,
        },
        signal,
        events,
      );
      settled = outcome.settled;
      const { settled: _, ...answer } = outcome;
      // Taken whatever the outcome (a failed or stopped task's files are sent too); the
      // folders it left are removed once its sandbox is gone, last of all.
      const taken = await this.#takeOutbox(run, prepared.outbox);
      cleanup.unshift(() =>
        clearOutbox(prepared.outbox).catch((e: unknown) =>
          this.#o.logger.warn(
            { task: run.task.id, err: describeError(e) },
            'outbox not emptied: what is left there is taken with the next task',
          ),
        ),
      );
      return {
        ...answer,
        text: taken.note
          ? [answer.text.trimEnd(), taken.note].filter(Boolean).join('\n\n')
          : answer.text,
        files: [...answer.files, ...taken.files],
      };
    } catch (e) {
      if (e instanceof Unready)
        return { kind: 'failure', text: e.message, files: [], detail: e.detail };
      throw e;
    } finally {
      const release = () => runCleanup(cleanup);
      const done = settled ? settled.catch(() => undefined).then(release) : release();
      // The conversation's next task and the repository's next new conversation get
      // sandboxes started once this one is gone (not after a task that could not start
      // one: its trouble would repeat).
      if (ran) void done.then(() => this.#replenishHeld(repoId, run.conversation.id));
      if (settled) {
        const late = setTimeout(() => windDown.abort(), WIND_DOWN_MS);
        void done.finally(() => clearTimeout(late));
        this.#windDown(run.conversation.id, done, () => windDown.abort());
      } else await done;
    }
  }

  /** Tracks a sandbox that answered and is still exiting, until it is gone. */
  #windDown(conversationId: string, done: Promise<void>, stop: () => void): void {
    const entry = { done, stop };
    this.#settling.set(conversationId, entry);
    void done.finally(() => {
      if (this.#settling.get(conversationId) === entry) this.#settling.delete(conversationId);
    });
  }

  /** Waits for sandboxes still winding down (for shutdown), and those being held. */
  async settle(): Promise<void> {
    await Promise.all([...this.#settling.values()].map((w) => w.done));
    await Promise.all([this.#heldNew?.settle(), this.#heldNext?.settle()]);
  }

  async close(): Promise<void> {
    await Promise.all([this.#heldNew?.close(), this.#heldNext?.close()]);
    await this.#o.warmNetns?.close();
  }

  async #prepare(
    run: TaskRun,
    repoId: string,
    repoConfig: RepoConfig,
    events: EventSink,
    cleanup: Array<() => Promise<void> | void>,
  ) {
    const repo = repoOf(repoId, repoConfig);
    const ws = this.#o.workspaces;
    const { agent } = repoConfig;
    if (this.#o.agent.needsModelCredential && !agent.api_key && !agent.oauth_token) {
      throw new Unready(
        'agent_credential_missing',
        `No model credential is configured for ${repoId}, so no agent can run. The operator sets repos.${repoId}.agent.api_key: !secret ANTHROPIC_API_KEY in the config and ANTHROPIC_API_KEY=… in secrets.env beside it (or, without a config file, starts errand with ANTHROPIC_API_KEY in its environment). errand check shows what is missing.`,
      );
    }
    await events.event('sandbox', { step: 'refresh_mirror' });
    // Every trusted read of the task names this one commit: a refresh by another task
    // meanwhile must not give it the allowlist of one commit and the image of another.
    let at: MirrorState;
    try {
      at = await ws.refreshMirror(repo);
    } catch (e) {
      throw new Unready(
        'workspace_failed',
        `errand could not update the repository: ${describeError(e)}`,
      );
    }
    const onBranch = (path: string) => `${path} on branch ${at.defaultBranch}`;

    // The limits, the network, the image and the conversation's clone are prepared side
    // by side: each git process is a few ms of the task's start.
    const limitsReady = this.#limits(repo, at, repoConfig, onBranch);
    limitsReady.catch(() => undefined);
    // The task may take a sandbox held for it (a follow-up, its conversation's; a new
    // conversation, its repository's): its network and folders are the task's at once;
    // the sandbox itself only if its image and limits prove to be this task's (else a
    // sandbox of the task's own uses them).
    const known = existsSync(ws.dirs(repoId, run.conversation.id).root);
    let held: Held | undefined;
    if (repoConfig.network.sandbox && this.#o.config().execution.hold_sandbox) {
      if (known) held = this.#heldNext?.take(run.conversation.id);
      else if (run.firstTask) held = this.#heldNew?.take(repoId);
    }
    const h = held;
    const ready = {
      network: this.#network(
        run,
        repo,
        at,
        repoConfig,
        onBranch,
        events,
        cleanup,
        h &&
          (async (accept) => {
            h.netns.attach(accept);
            return h.netns;
          }),
      ),
      conversation: h?.spare
        ? ws
            .adoptSpare(repo, h.dirs, run.conversation.id)
            .then(() => ws.prepareConversation(repo, run.conversation.id))
        : ws.prepareConversation(repo, run.conversation.id),
    };
    // Both are awaited below; until then a rejection must not count as unhandled.
    ready.network.catch(() => undefined);
    ready.conversation.catch(() => undefined);
    let image: string;
    let mounts: SandboxMount[];
    let outbox: string;
    let limits: Awaited<typeof limitsReady>;
    let env: Record<string, string>;
    let network: SandboxNetwork;
    try {
      image = await this.#image(repo, at, onBranch, limitsReady, events, cleanup);
      limits = await limitsReady;
      if (held && held.key !== heldKey(image, limits, claudeVersion(repoConfig))) {
        await held.sandbox.discard();
        held = undefined;
      }
      // The conversation's own folders: the only host paths the sandbox sees.
      const { dirs } = await ready.conversation;
      await copyAttachments(run, dirs.inbox);
      outbox = dirs.outbox;
      mounts = this.#mounts(dirs);
      ({ env, network } = await ready.network);
    } catch (e) {
      // Its cleanup is registered once it settles; wait so nothing outlives the task.
      await Promise.all([
        ready.network.catch(() => undefined),
        ready.conversation.catch(() => undefined),
      ]);
      // Discarding is idempotent: the task's network may already own the namespace.
      if (h) await this.#discardHeld(h);
      throw e;
    }
    // Without the proxy there is nothing to trust.
    const files = network.kind === 'netns' ? this.#files() : [];
    if (held)
      await events.event('sandbox', { step: 'held', detail: 'started before the task came' });
    return { image, mounts, files, env, limits, network, outbox, held: held?.sandbox };
  }

  /** The mounts of a conversation's sandbox: its folders, the only host paths it sees. */
  #mounts(dirs: ConversationDirs): SandboxMount[] {
    return [
      { source: dirs.workspace, target: SANDBOX_PATHS.workspace },
      { source: dirs.agentState, target: SANDBOX_PATHS.agentState },
      { source: dirs.inbox, target: SANDBOX_PATHS.inbox, readOnly: true },
      { source: dirs.outbox, target: SANDBOX_PATHS.outbox },
      { source: dirs.storage, target: SANDBOX_PATHS.storage },
    ];
  }

  /** errand's files a sandbox behind the proxy gets: the CA certificate. */
  #files(): ContainerFile[] {
    return [{ target: CA_CERT, content: this.#o.caCert }];
  }

  /**
   * The image of the default branch's .errand/container/ (errand's base image when there
   * is none), built when not cached. The limits are awaited before a build that may take
   * minutes, so an invalid sandbox file is said at once.
   */
  async #image(
    repo: WorkspaceRepo,
    at: MirrorState,
    onBranch: (path: string) => string,
    limitsReady: Promise<unknown>,
    events: EventSink,
    cleanup: Array<() => Promise<void> | void>,
  ): Promise<string> {
    mkdirSync(this.#o.buildDir, { recursive: true, mode: 0o700 });
    const context = join(this.#o.buildDir, ownedName());
    mkdirSync(context, { mode: 0o700 });
    cleanup.push(() => rmSync(context, { recursive: true, force: true }));
    let found: boolean;
    try {
      found = await this.#o.workspaces.extractTrustedDir(repo, at, CONTAINER_DIR, context);
    } catch (e) {
      throw new Unready(
        'container_invalid',
        `${onBranch(`${CONTAINER_DIR}/`)}: ${describeError(e)}`,
      );
    }
    if (!found) {
      // The operator's own base image, not anything from the repository: a repository
      // can be tried before it has a Containerfile.
      await events.event('sandbox', {
        warning: `${onBranch(`${CONTAINER_DIR}/`)} does not exist: running in errand's base image (git, curl, Node). Add a Containerfile there by pull request for the project's own tools (docs/repo-onboarding.md).`,
      });
      writeFileSync(join(context, 'Containerfile'), `FROM ${BASE_IMAGE}\n`);
    }
    await limitsReady;
    await events.event('sandbox', { step: 'image' });
    const built = await this.#o.driver.prepareImage(context);
    // The build output is kept with the task, for the dashboard and for the error reply.
    this.#lastImage.set(repo.id, {
      ok: built.ok,
      image: built.ok ? built.image : undefined,
      built: built.ok ? built.built : true,
      at: Date.now(),
    });
    await events.event('sandbox_image', {
      ok: built.ok,
      image: built.ok ? built.image : undefined,
      built: built.ok ? built.built : true,
      log: built.log.trimEnd().split('\n').slice(-200).join('\n'),
    });
    if (!built.ok) {
      const tail = built.log.trimEnd().split('\n').slice(-15).join('\n');
      throw new Unready(
        'image_failed',
        `Building the sandbox image from ${onBranch(`${CONTAINER_DIR}/`)} failed: ${built.reason}\n\nLast lines of the build:\n${tail}`,
      );
    }
    return built.image;
  }

  /**
   * Starts the sandboxes of the repository's next new conversation and of this
   * conversation's next task, from the mirror's default branch as it is now (a task
   * checks it against the fresh one before using it). Only for repositories behind the
   * network sandbox, and only when the config asks.
   */
  #replenishHeld(repoId: string, conversationId: string): void {
    if (!this.#o.config().execution.hold_sandbox) return;
    this.#heldNext?.replenish(conversationId, () => this.#hold(repoId, conversationId));
    this.#heldNew?.replenish(repoId, () => this.#hold(repoId));
  }

  /** A held sandbox on the conversation's folders, or on spare ones when none is named. */
  async #hold(repoId: string, conversationId?: string): Promise<Held | undefined> {
    const repoConfig = this.#o.config().repos[repoId];
    const warm = this.#o.warmNetns;
    if (!repoConfig?.network.sandbox || !warm) return undefined;
    const ws = this.#o.workspaces;
    const own = conversationId ? ws.dirs(repoId, conversationId) : undefined;
    // A conversation deleted meanwhile gets nothing.
    if (own && !existsSync(own.workspace)) return undefined;
    const repo = repoOf(repoId, repoConfig);
    const cleanup: Array<() => Promise<void> | void> = [];
    const quiet: EventSink = { event: async () => undefined };
    try {
      // Read once: the image and the limits are of one commit.
      const at = await ws.mirrorState(repo);
      const limitsReady = this.#limits(repo, at, repoConfig, (p) => p);
      limitsReady.catch(() => undefined);
      const image = await this.#image(repo, at, (p) => p, limitsReady, quiet, cleanup);
      const limits = await limitsReady;
      const dirs = own ?? (await ws.spareDirs(repoId));
      const spare = !own;
      const netns = await warm.take().catch(async (e) => {
        if (spare) await this.#o.driver.removeFolder(dirs.root);
        throw e;
      });
      // The spare went to the held sandbox: a task must not wait for a new one.
      warm.refill();
      const sandbox = await this.#o.driver
        .hold({
          image,
          mounts: this.#mounts(dirs),
          files: this.#files(),
          limits: sandboxLimits(limits),
          network: { kind: 'netns', path: netns.path, dns: netns.dns },
          claudeCodeVersion: claudeVersion(repoConfig),
          maxLifetimeMs: HOLD_MAX_IDLE_MS + limits.timeout_seconds * 1000,
        })
        .catch(async (e) => {
          await netns.close();
          if (spare) await this.#o.driver.removeFolder(dirs.root);
          throw e;
        });
      const key = heldKey(image, limits, claudeVersion(repoConfig));
      return { key, dirs, spare, netns, sandbox };
    } catch (e) {
      this.#o.logger.debug({ repo: repoId, err: describeError(e) }, 'no sandbox held');
      return undefined;
    } finally {
      await runCleanup(cleanup);
    }
  }

  async #discardHeld(h: Held): Promise<void> {
    await h.sandbox.discard();
    await h.netns.close();
    // A conversation's own folders stay, of course. Discards are not awaited by all
    // callers: a failure is logged here, not left to reject.
    if (h.spare)
      await this.#o.driver.removeFolder(h.dirs.root).catch((e: unknown) => {
        this.#o.logger.error(
          { err: describeError(e) },
          'the folders of a discarded held sandbox were not removed; the next start removes them',
        );
      });
  }

  /** The operator's limits, tightened (never loosened) by the repository's sandbox file. */
  async #limits(
    repo: WorkspaceRepo,
    at: MirrorState,
    repoConfig: RepoConfig,
    onBranch: (path: string) => string,
  ) {
    let settings: SandboxFile = sandboxFileSchema.parse({});
    const sandboxText = await this.#o.workspaces
      .readTrustedFile(repo, at, SANDBOX_FILE)
      .catch((e: unknown) => {
        throw unreadable(e, 'sandbox_file_invalid', onBranch(SANDBOX_FILE));
      });
    if (sandboxText) {
      // The repository's credentials are for CI (errand sandbox run); a task's come from
      // the server config, so `!env` is not resolved here.
      const parsed = parseSandboxFile(sandboxText.toString('utf8'), { env: 'unresolved' });
      if (!parsed.ok)
        throw new Unready(
          'sandbox_file_invalid',
          `${onBranch(SANDBOX_FILE)} is invalid: ${parsed.problem}. Fix it by pull request.`,
        );
      settings = parsed.file;
    }
    const base = repoConfig.limits;
    return {
      timeout_seconds: lower(base.timeout_seconds, settings.limits.timeout_seconds),
      memory:
        settings.limits.memory && bytes(settings.limits.memory) < bytes(base.memory)
          ? settings.limits.memory
          : base.memory,
      cpus: lower(base.cpus, settings.limits.cpus),
      pids: lower(base.pids, settings.limits.pids),
    };
  }

  /** The task's network and the environment that goes with it (surrogates, API host). */
  async #network(
    run: TaskRun,
    repo: WorkspaceRepo,
    at: MirrorState,
    repoConfig: RepoConfig,
    onBranch: (path: string) => string,
    events: EventSink,
    cleanup: Array<() => Promise<void> | void>,
    /** The namespace to use; default: the warm spare, else a new one. */
    netnsFor?: (accept: AcceptConnection) => Promise<SandboxNetns>,
  ): Promise<{ env: Record<string, string>; network: SandboxNetwork }> {
    const ws = this.#o.workspaces;
    const repoId = repo.id;
    const dirs = ws.dirs(repoId, run.conversation.id);
    const env: Record<string, string> = { ...repoConfig.env };
    const agent = repoConfig.agent;
    if (agent.api_host !== 'api.anthropic.com')
      env.ANTHROPIC_BASE_URL = `https://${agent.api_host}`;
    // The agent's own credential is a masked secret like any other: scoped to the API host,
    // in the header the CLI uses for it.
    const agentSecrets = [
      ...(agent.api_key
        ? [
            {
              name: 'ANTHROPIC_API_KEY',
              real: agent.api_key.reveal(),
              hosts: [agent.api_host],
              headers: ['x-api-key'],
            },
          ]
        : []),
      ...(agent.oauth_token
        ? [
            {
              name: 'CLAUDE_CODE_OAUTH_TOKEN',
              real: agent.oauth_token.reveal(),
              hosts: [agent.api_host],
              headers: ['Authorization'],
            },
          ]
        : []),
    ];

    let network: SandboxNetwork;
    if (repoConfig.network.sandbox) {
      const fromBranch = await this.#allowlist(
        ws.readTrustedFile(repo, at, ALLOWLIST_FILE),
        onBranch(ALLOWLIST_FILE),
        events,
      );
      // The model API the operator configured is always reachable, for the agent's requests only.
      const allowlist: Allowlist = {
        allow: [
          ...fromBranch.allow,
          { host: agent.api_host.toLowerCase(), paths: ['/v1/messages*'], methods: ['POST'] },
        ],
      };
      const modelRequests = {
        serverTools: agent.server_tools,
        allowedHosts: hostsOpenToGet(allowlist),
      };
      let net: TaskNetwork;
      try {
        net = await openTaskNetwork(
          this.#o.proxy,
          {
            taskId: run.task.id,
            allowlist,
            secrets: [
              ...agentSecrets,
              ...Object.entries(repoConfig.masked_secrets).map(([name, m]) => ({
                name,
                real: m.value.reveal(),
                hosts: m.hosts,
                headers: m.headers,
              })),
            ],
            aws: Object.entries(repoConfig.aws_credentials).map(([name, a]) => ({
              name,
              accessKeyId: a.access_key_id.reveal(),
              secretAccessKey: a.secret_access_key.reveal(),
              sessionToken: a.session_token?.reveal(),
              hosts: a.hosts,
            })),
            resolve: repoConfig.network.resolve,
            cleartextCredentials: repoConfig.network.cleartext_credentials,
            upstreamCa: repoConfig.network.upstream_ca
              ? readFileSync(repoConfig.network.upstream_ca, 'utf8')
              : undefined,
            log: fileNetworkLog(join(dirs.root, 'network.log')),
            // The provider runs server tools itself, past the proxy: only those the operator
            // enabled go on, and web tools only to what the allowlist admits.
            modelApi: {
              host: agent.api_host.toLowerCase(),
              filter: (body) => filterModelRequest(body, modelRequests),
            },
          },
          netnsFor ??
            (this.#o.warmNetns
              ? (accept) => this.#o.warmNetns!.take(accept)
              : (accept) => openSandboxNetns(this.#o.podmanEnv, accept)),
        );
      } catch (e) {
        throw new Unready(
          'network_failed',
          `errand could not start the sandbox network: ${describeError(e)}`,
        );
      }
      cleanup.push(() => net.close());
      Object.assign(env, net.env);
      network = { kind: 'netns', ...net.netns };
    } else {
      this.#o.logger.warn(
        { repo: repoId, task: run.task.id },
        'network sandbox is off for this repository (network.sandbox: false): the task has unrestricted network access',
      );
      await events.event('sandbox', {
        warning: 'network sandbox off: unrestricted network access',
      });
      // Without the proxy nothing can swap a surrogate: the container gets the real values.
      for (const s of agentSecrets) env[s.name] = s.real;
      network = { kind: 'unrestricted' };
    }
    return { env, network };
  }

  async #allowlist(
    text: Promise<Buffer | undefined>,
    where: string,
    events: EventSink,
  ): Promise<Allowlist> {
    const raw = await text.catch((e: unknown) => {
      throw unreadable(e, 'allowlist_invalid', where);
    });
    if (!raw) {
      await events.event('sandbox', {
        warning: `${where} does not exist: no request may leave the sandbox`,
      });
      return { allow: [] };
    }
    const parsed = parseAllowlist(raw.toString('utf8'));
    if (!parsed.ok)
      throw new Unready(
        'allowlist_invalid',
        `${where} is invalid: ${parsed.problem}. Fix it by pull request.`,
      );
    return parsed.allowlist;
  }

  /**
   * The task's outbox files, as copies under the deliveries folder, and a note naming
   * what was not attached. The outbox is the sandbox's: nothing in it is opened by path
   * later (docs/sandbox.md, "Files between host and sandbox").
   */
  async #takeOutbox(run: TaskRun, outbox: string): Promise<{ files: string[]; note: string }> {
    try {
      const dest = join(this.#o.deliveriesDir, run.conversation.id, run.task.id);
      const taken = await takeOutbox(outbox, dest);
      return { files: taken.files.map((f) => f.path), note: describeSkipped(taken) };
    } catch (e) {
      this.#o.logger.error({ task: run.task.id, err: describeError(e) }, 'outbox not taken');
      return {
        files: [],
        note: 'The files in the outbox could not be taken, so none is attached; the operator can find why in the service log.',
      };
    }
  }

  /**
   * Deletes the conversation's folders, whatever its agent did to them (locked folders,
   * files of another uid, links: see SandboxDriver.removeFolder), and its reply copies.
   * Fails with `tree_not_removed` when anything is left; what could go is gone.
   */
  async removeConversation(c: Conversation): Promise<void> {
    // A sandbox that answered may still run (and its agent with it): stopped first, so no
    // process of the sandbox is in the folders while they are removed.
    const running = this.#settling.get(c.id);
    running?.stop();
    await running?.done;
    await this.#heldNext?.drop(c.id);
    await this.#o.driver.removeFolder(this.#o.workspaces.dirs(c.repoId, c.id).root);
    await removeTree(join(this.#o.deliveriesDir, c.id));
  }

  async networkLog(c: Conversation, limit: number): Promise<NetworkRequest[]> {
    const path = join(this.#o.workspaces.dirs(c.repoId, c.id).root, 'network.log');
    let text: string;
    try {
      text = await readTail(path, limit * NETWORK_LOG_LINE_BYTES);
    } catch {
      return [];
    }
    const lines = text.split('\n').filter(Boolean).slice(-limit);
    return lines.flatMap((l) => {
      try {
        return [JSON.parse(l) as NetworkRequest];
      } catch {
        return [];
      }
    });
  }

  async describeRepo(repoId: string, repoConfig: RepoConfig): Promise<RepoSandboxInfo> {
    const ws = this.#o.workspaces;
    const image = this.#lastImage.get(repoId);
    // Reading the default branch would clone the repository first; leave that to a task.
    if (!existsSync(join(ws.mirrorPath(repoId), 'HEAD'))) {
      return { image, note: 'not fetched yet: shown after the first task' };
    }
    const repo = repoOf(repoId, repoConfig);
    try {
      const at = await ws.mirrorState(repo);
      const allowlist = await ws.readTrustedFile(repo, at, ALLOWLIST_FILE);
      return { allowlist: allowlist?.toString('utf8'), defaultBranch: at.defaultBranch, image };
    } catch (e) {
      return { image, note: `could not read the default branch: ${describeError(e)}` };
    }
  }

  /**
   * Removes what an errand that is gone left: its containers first (with their env files
   * and copies of errand's files), then the spare folders its held sandboxes mounted and
   * its build contexts. Containers go first: one still running could write into a folder
   * while it is removed. What a live errand on the same folders uses stays (owned-names).
   */
  async cleanupOrphans(): Promise<void> {
    const removed = await this.#o.driver.removeOrphans();
    if (removed.length)
      this.#o.logger.warn({ removed }, 'removed sandboxes left by an earlier errand');
    // A folder that cannot be removed now is logged and tried again at the next start:
    // it must not keep errand, and every thread waiting on it, from starting.
    for (const spare of this.#o.workspaces.leftSpares()) {
      await this.#o.driver.removeFolder(spare).catch((e: unknown) => {
        this.#o.logger.warn(
          { err: describeError(e) },
          'a spare folder left by an earlier errand stays',
        );
      });
    }
    try {
      removeLeftBehind(this.#o.buildDir);
    } catch (e) {
      this.#o.logger.warn(
        { err: describeError(e) },
        'build contexts left by an earlier errand stay',
      );
    }
  }
}

/** What a network log line takes at most, for reading only the lines asked for. */
const NETWORK_LOG_LINE_BYTES = 8 * 1024;

/**
 * The last `maxBytes` of a file, from its first whole line. A task's network log grows
 * with every request it makes: read whole, a flood of them cost memory at each look, and
 * past V8's longest string it could not be read at all, hiding every request.
 */
async function readTail(path: string, maxBytes: number): Promise<string> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const start = Math.max(0, size - maxBytes);
    const buf = Buffer.alloc(size - start);
    const { bytesRead } = await handle.read(buf, 0, buf.length, start);
    const text = buf.subarray(0, bytesRead).toString('utf8');
    return start === 0 ? text : text.slice(text.indexOf('\n') + 1);
  } finally {
    await handle.close();
  }
}

/**
 * Copies the task's attachments into the conversation's inbox. Each is written as a new
 * file, whatever had its name removed first and no link followed, so nothing planted in
 * the inbox can steer a write elsewhere on the host.
 */
async function copyAttachments(run: TaskRun, inbox: string): Promise<void> {
  for (const part of run.parts) {
    for (const a of part.attachments) {
      const saved = await readRegularFile(a.path, Number.MAX_SAFE_INTEGER);
      // A missing attachment file is reported by the channel that saved it.
      if (!saved.ok) continue;
      const name = safeFileName(a.name, 'attachment');
      try {
        await writeNewFile(join(inbox, name), saved.content, 0o644);
      } catch (e) {
        throw new Unready(
          'inbox_failed',
          `errand could not put the attachment ${name} in the inbox (${(e as NodeJS.ErrnoException).code ?? 'error'}). Reply in this thread to try again.`,
        );
      }
    }
  }
}
