import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ErrandError } from '../util/errors.ts';
import { leftBehind, ownedName } from '../util/owned-names.ts';
import { removeTree } from '../util/remove-tree.ts';
import { stripCredentials } from '../util/url-credentials.ts';
import { git, gitOk } from './git.ts';
import { TrustedTree } from './trusted-tree.ts';

export interface WorkspaceRepo {
  /** The repository's id in the config; names its mirror and conversation folders. */
  id: string;
  /**
   * Where the repository lives: a URL (credentials in it stay on the host: they are kept
   * in the mirror's config only) or an absolute local path.
   */
  gitUrl: string;
  /** The configured default branch; undefined means "the remote's HEAD". */
  defaultBranch?: string;
}

/** A conversation's host folders; only these are ever mounted into its sandbox. */
export interface ConversationDirs {
  /** Holds the folders below; never mounted itself. */
  root: string;
  /** The clone the agent works in. */
  workspace: string;
  /** The agent's own state (session transcripts), so a session can be resumed. */
  agentState: string;
  /** Attachments from the thread. */
  inbox: string;
  /** Files the agent wants sent back. */
  outbox: string;
  /** Storage that persists across the conversation's tasks. */
  storage: string;
}

export interface MirrorState {
  defaultBranch: string;
  /** The commit the default branch points to in the mirror. */
  commit: string;
}

const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** Spare folders' name prefix: SAFE_ID starts with a letter or digit, so no id has it. */
const SPARE = '.spare-';

function checkId(kind: string, id: string): void {
  if (!SAFE_ID.test(id) || id.includes('..'))
    throw new ErrandError('usage', `invalid ${kind} id ${JSON.stringify(id.slice(0, 80))}`);
}

// A URL starting with `-` would be read by git as an option (`--upload-pack=…`).
function checkRepo(repo: WorkspaceRepo): void {
  checkId('repository', repo.id);
  if (repo.gitUrl === '' || repo.gitUrl.startsWith('-') || /[\0\r\n]/.test(repo.gitUrl))
    throw new ErrandError(
      'config_invalid',
      `repos.${repo.id}.git_url is not a usable git URL. Set it to a URL or an absolute path.`,
    );
}

function noBranch(repo: WorkspaceRepo, branch: string | undefined): ErrandError {
  return new ErrandError(
    'git_failed',
    `The default branch "${branch}" of repository ${repo.id} does not exist. Set repos.${repo.id}.default_branch in the config.`,
  );
}

function dirsUnder(root: string): ConversationDirs {
  return {
    root,
    workspace: join(root, 'workspace'),
    agentState: join(root, 'agent'),
    inbox: join(root, 'inbox'),
    outbox: join(root, 'outbox'),
    storage: join(root, 'storage'),
  };
}

function tempName(base: string): string {
  return `${base}.tmp-${randomBytes(6).toString('hex')}`;
}

/**
 * Git on the host: a bare mirror per repository, a full clone per conversation, and the
 * trusted files (`.errand/`) read from the mirror's default branch, never from a clone the
 * agent can change.
 *
 * Layout: `<root>/mirrors/<repoId>.git`, and
 * `<conversations>/<repoId>/<conversationId>/{workspace,agent,inbox,outbox,storage}`
 * (a conversation an older errand made under `<root>/conversations/` stays there).
 *
 * git never runs in a workspace once it has been handed to the agent: the agent controls
 * its `.git/config` (`core.fsmonitor`, hooks), which git on the host would execute.
 */
export class Workspaces {
  readonly #root: string;
  readonly #conversations: string;
  /** Where an older errand made conversation folders; undefined when it is #conversations. */
  readonly #legacy: string | undefined;
  readonly #refreshing = new Map<string, Promise<MirrorState>>();
  readonly #preparing = new Map<string, Promise<{ dirs: ConversationDirs; created: boolean }>>();
  readonly #branches = new Map<string, string>();
  /** The URL each mirror's `origin` was last set to by this process. */
  readonly #urls = new Map<string, string>();
  /** Branch names check-ref-format accepted. */
  readonly #validBranches = new Set<string>();
  /** The last commit's trusted files read per repository. */
  readonly #trees = new Map<string, TrustedTree>();

  /**
   * `root` (e.g. `<stateDir>/workspaces`) holds the mirrors; `conversations` (e.g.
   * `<sandboxDir>/conversations`, default `<root>/conversations`) the conversations'
   * folders, which sandboxes mount. Both are created with mode 0700.
   */
  constructor(opts: { root: string; conversations?: string }) {
    this.#root = opts.root;
    const legacy = join(opts.root, 'conversations');
    this.#conversations = opts.conversations ?? legacy;
    this.#legacy = this.#conversations === legacy ? undefined : legacy;
    for (const d of [opts.root, this.#conversations]) {
      mkdirSync(d, { recursive: true, mode: 0o700 });
      chmodSync(d, 0o700);
    }
    mkdirSync(join(opts.root, 'mirrors'), { recursive: true, mode: 0o700 });
  }

  /** The bare mirror of a repository (host only; never mounted). */
  mirrorPath(repoId: string): string {
    checkId('repository', repoId);
    return join(this.#root, 'mirrors', `${repoId}.git`);
  }

  /**
   * Creates the repository's mirror, or fetches into it with prune (branches deleted on
   * the remote disappear). Concurrent callers for one repository share one fetch. Returns
   * the default branch (configured, else the mirror's HEAD, which follows the remote's
   * HEAD at creation) and its commit. Fails with `git_failed` naming the repository and
   * the step; credentials in URLs are redacted.
   */
  async refreshMirror(repo: WorkspaceRepo): Promise<MirrorState> {
    checkRepo(repo);
    const running = this.#refreshing.get(repo.id);
    if (running) return await running;
    const p = this.#refresh(repo).finally(() => this.#refreshing.delete(repo.id));
    this.#refreshing.set(repo.id, p);
    return await p;
  }

  async #refresh(repo: WorkspaceRepo): Promise<MirrorState> {
    const mirror = this.mirrorPath(repo.id);
    const hint = `Check repos.${repo.id}.git_url and that this host can reach it.`;
    if (!existsSync(join(mirror, 'HEAD'))) {
      // Cloned aside and renamed, so an interrupted clone never looks like a mirror.
      rmSync(mirror, { recursive: true, force: true });
      const tmp = tempName(mirror);
      try {
        await git(['clone', '--mirror', '--quiet', '--', repo.gitUrl, tmp], {
          step: 'clone --mirror',
          repoId: repo.id,
          hint,
        });
        renameSync(tmp, mirror);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    } else {
      const run = (args: string[], step: string) =>
        git(['-C', mirror, ...args], { step, repoId: repo.id, hint, remoteUrl: repo.gitUrl });
      // Every git process is a few ms of a task's start: the URL is set again only when
      // the config changed it since this process last did.
      if (this.#urls.get(repo.id) !== repo.gitUrl)
        await run(['remote', 'set-url', 'origin', repo.gitUrl], 'remote set-url');
      await run(['fetch', '--prune', '--quiet', 'origin'], 'fetch --prune');
    }
    this.#urls.set(repo.id, repo.gitUrl);
    let branch = repo.defaultBranch ?? (await this.#localHead(repo, mirror));
    let commit = branch === undefined ? undefined : await this.#branchCommit(repo, mirror, branch);
    if (commit === undefined && repo.defaultBranch === undefined) {
      // HEAD's branch is gone (the local check above already failed): ask the remote.
      branch = await this.#followRemoteHead(repo, mirror);
      commit = await this.#branchCommit(repo, mirror, branch);
    }
    if (branch === undefined || commit === undefined) throw noBranch(repo, branch);
    this.#branches.set(repo.id, branch);
    return { defaultBranch: branch, commit };
  }

  /** The branch's commit in the mirror, or undefined when there is no such branch. */
  async #branchCommit(
    repo: WorkspaceRepo,
    mirror: string,
    branch: string,
  ): Promise<string | undefined> {
    const opts = { step: 'rev-parse', repoId: repo.id };
    // A configured name like `main^{tree}` or `-x` must not become another revision.
    if (!this.#validBranches.has(branch)) {
      if (!(await gitOk(['check-ref-format', `refs/heads/${branch}`], opts))) return undefined;
      this.#validBranches.add(branch);
    }
    const r = await git(
      ['-C', mirror, 'rev-parse', '--verify', '--quiet', `refs/heads/${branch}^{commit}`],
      opts,
    ).catch(() => undefined);
    return r?.stdout.toString().trim();
  }

  /** The branch the mirror's HEAD names (it may no longer exist). */
  async #localHead(repo: WorkspaceRepo, mirror: string): Promise<string | undefined> {
    const head = await git(['-C', mirror, 'symbolic-ref', '--quiet', 'HEAD'], {
      step: 'symbolic-ref',
      repoId: repo.id,
    }).catch(() => undefined);
    return head?.stdout
      .toString()
      .trim()
      .replace(/^refs\/heads\//, '');
  }

  // The mirror's HEAD is the remote's at clone time (git fetch does not update it); when
  // that branch is gone since, ask the remote again and follow it.
  async #detectBranch(repo: WorkspaceRepo, mirror: string): Promise<string> {
    const local = await this.#localHead(repo, mirror);
    if (
      local &&
      (await gitOk(['-C', mirror, 'show-ref', '--verify', '--quiet', `refs/heads/${local}`], {
        step: 'show-ref',
        repoId: repo.id,
      }))
    )
      return local;
    return await this.#followRemoteHead(repo, mirror);
  }

  /** Points the mirror's HEAD at the remote's default branch, and returns its name. */
  async #followRemoteHead(repo: WorkspaceRepo, mirror: string): Promise<string> {
    const remote = await git(['-C', mirror, 'ls-remote', '--symref', 'origin', 'HEAD'], {
      step: 'ls-remote',
      repoId: repo.id,
      remoteUrl: repo.gitUrl,
    });
    const m = /^ref: refs\/heads\/(\S+)\s+HEAD/m.exec(remote.stdout.toString());
    if (!m)
      throw new ErrandError(
        'git_failed',
        `Cannot tell the default branch of repository ${repo.id}. Set repos.${repo.id}.default_branch in the config.`,
      );
    await git(['-C', mirror, 'symbolic-ref', 'HEAD', `refs/heads/${m[1]}`], {
      step: 'symbolic-ref',
      repoId: repo.id,
    });
    return m[1]!;
  }

  /**
   * The default branch and its commit in the mirror as it is now, without fetching (the
   * mirror is created when there is none yet). For reads outside a task; a task reads with
   * the state refreshMirror returned.
   */
  async mirrorState(repo: WorkspaceRepo): Promise<MirrorState> {
    const branch = await this.#branch(repo);
    const commit = await this.#branchCommit(repo, this.mirrorPath(repo.id), branch);
    if (commit === undefined) throw noBranch(repo, branch);
    return { defaultBranch: branch, commit };
  }

  async #branch(repo: WorkspaceRepo): Promise<string> {
    checkRepo(repo);
    const mirror = this.mirrorPath(repo.id);
    if (!existsSync(join(mirror, 'HEAD'))) return (await this.refreshMirror(repo)).defaultBranch;
    return (
      repo.defaultBranch ?? this.#branches.get(repo.id) ?? (await this.#detectBranch(repo, mirror))
    );
  }

  // One tree per mirror commit: its listings are kept, and a commit's content never changes.
  #trusted(repo: WorkspaceRepo, at: MirrorState): TrustedTree {
    checkRepo(repo);
    const kept = this.#trees.get(repo.id);
    if (kept?.commit === at.commit) return kept;
    const tree = new TrustedTree(this.mirrorPath(repo.id), at.commit, repo.id);
    this.#trees.set(repo.id, tree);
    return tree;
  }

  /**
   * A file of the default branch at `at` (what refreshMirror or mirrorState returned), or
   * undefined when nothing exists at `path`: every read of one task names the same commit,
   * so a refresh in between cannot mix two. Never reads a conversation's workspace. A
   * folder or symlink at `path` is `trusted_file_invalid`; a path with `..` is `usage`.
   */
  async readTrustedFile(
    repo: WorkspaceRepo,
    at: MirrorState,
    path: string,
  ): Promise<Buffer | undefined> {
    return await this.#trusted(repo, at).readFile(path);
  }

  /**
   * Writes a folder of the default branch at `at` (e.g. `.errand/container`) to
   * `destDir`; false when it is absent. A symlink resolving outside the folder, a
   * submodule or an unsafe name in it is `trusted_file_invalid`, naming the path.
   */
  async extractTrustedDir(
    repo: WorkspaceRepo,
    at: MirrorState,
    dir: string,
    destDir: string,
  ): Promise<boolean> {
    return await this.#trusted(repo, at).extractDir(dir, destDir);
  }

  /**
   * A sha256 (hex) naming a folder's content at `at` (file names, modes and content, from
   * its git tree id), or undefined when the folder is absent. It changes exactly when
   * something in the folder does.
   */
  async trustedTreeId(
    repo: WorkspaceRepo,
    at: MirrorState,
    dir: string,
  ): Promise<string | undefined> {
    const tree = await this.#trusted(repo, at).treeId(dir);
    return tree && createHash('sha256').update(`git-tree ${tree}`).digest('hex');
  }

  /**
   * The conversation's folders (nothing is created): where an older errand made them, if
   * it did, else under the conversations folder. Ids are checked before any path is built.
   */
  dirs(repoId: string, conversationId: string): ConversationDirs {
    checkId('repository', repoId);
    checkId('conversation', conversationId);
    const legacy = this.#legacy && join(this.#legacy, repoId, conversationId);
    if (legacy && existsSync(legacy)) return dirsUnder(legacy);
    return dirsUnder(join(this.#conversations, repoId, conversationId));
  }

  /**
   * Creates the conversation's folders (mode 0700) and, the first time, a self-contained
   * clone of the mirror on the default branch: objects copied, no alternates, `origin` set
   * to the real URL without its credentials. The mirror is created when missing, but not
   * refreshed: call refreshMirror first. Later calls leave the workspace exactly as the
   * agent left it, even without its `.git`. `created` tells whether the clone was made now.
   */
  async prepareConversation(
    repo: WorkspaceRepo,
    conversationId: string,
  ): Promise<{ dirs: ConversationDirs; created: boolean }> {
    checkRepo(repo);
    const dirs = this.dirs(repo.id, conversationId);
    const running = this.#preparing.get(dirs.root);
    if (running) return await running;
    const p = this.#prepare(repo, dirs).finally(() => this.#preparing.delete(dirs.root));
    this.#preparing.set(dirs.root, p);
    return await p;
  }

  async #prepare(
    repo: WorkspaceRepo,
    dirs: ConversationDirs,
  ): Promise<{ dirs: ConversationDirs; created: boolean }> {
    for (const d of [dirs.root, dirs.agentState, dirs.inbox, dirs.outbox, dirs.storage])
      mkdirSync(d, { recursive: true, mode: 0o700 });
    if (existsSync(dirs.workspace)) return { dirs, created: false };
    // Cloned aside and renamed: a half-made clone is never taken for the agent's work.
    const tmp = tempName(join(dirs.root, '.workspace'));
    try {
      await this.#clone(repo, tmp);
      renameSync(tmp, dirs.workspace);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    return { dirs, created: true };
  }

  /**
   * Folders for a conversation that has not begun yet, so a sandbox can mount them before
   * its task comes (see adoptSpare). Their workspace is empty; they live beside the
   * conversations' (a rename moves them), under a name no conversation id can take, that
   * names the process they are for.
   */
  async spareDirs(repoId: string): Promise<ConversationDirs> {
    checkId('repository', repoId);
    const dirs = dirsUnder(join(this.#conversations, repoId, ownedName(SPARE)));
    for (const d of [dirs.workspace, dirs.agentState, dirs.inbox, dirs.outbox, dirs.storage])
      mkdirSync(d, { recursive: true, mode: 0o700 });
    return dirs;
  }

  /**
   * Makes spare folders a new conversation's: the default branch is cloned into their
   * workspace (as prepareConversation would), then the folders are renamed into place, so
   * a half-made clone is never taken for the conversation's. Folders mounted in a sandbox
   * stay mounted: a bind mount follows the folder, not its name. Fails when the
   * conversation has folders already; the spare is then left as it was.
   */
  async adoptSpare(repo: WorkspaceRepo, spare: ConversationDirs, conversationId: string) {
    checkRepo(repo);
    const dirs = this.dirs(repo.id, conversationId);
    if (existsSync(dirs.root))
      throw new ErrandError('usage', `conversation ${conversationId} has folders already`);
    await this.#clone(repo, spare.workspace);
    mkdirSync(dirname(dirs.root), { recursive: true, mode: 0o700 });
    renameSync(spare.root, dirs.root);
    return dirs;
  }

  /**
   * A self-contained clone of the mirror's default branch at `dest` (absent or empty):
   * --no-local copies objects through the pack protocol, so there are no hardlinks into
   * the mirror and no objects/info/alternates, and the clone works when mounted alone.
   * The agent can read its .git/config: the credentials stay in the mirror's.
   */
  async #clone(repo: WorkspaceRepo, dest: string): Promise<void> {
    const branch = await this.#branch(repo);
    await git(
      [
        'clone',
        '--quiet',
        '--no-local',
        '--no-hardlinks',
        '--branch',
        branch,
        '--',
        this.mirrorPath(repo.id),
        dest,
      ],
      { step: 'clone', repoId: repo.id },
    );
    await git(['-C', dest, 'remote', 'set-url', 'origin', stripCredentials(repo.gitUrl)], {
      step: 'remote set-url',
      repoId: repo.id,
    });
  }

  /**
   * The spare folders of errand processes that are gone (another errand may share the
   * conversations folder), for the caller to remove through the sandbox driver
   * (SandboxDriver.removeFolder): a held sandbox may have mounted them.
   */
  leftSpares(): string[] {
    const spares: string[] = [];
    for (const conversations of [this.#conversations, this.#legacy]) {
      if (!conversations || !existsSync(conversations)) continue;
      for (const repo of readdirSync(conversations, { withFileTypes: true })) {
        if (!repo.isDirectory()) continue;
        for (const name of readdirSync(join(conversations, repo.name)))
          if (leftBehind(name, SPARE)) spares.push(join(conversations, repo.name, name));
      }
    }
    return spares;
  }

  /**
   * Deletes the conversation's folders as errand's user (removeTree: links removed, never
   * followed); nothing happens when they do not exist. What a sandbox's user mapping left
   * needs SandboxDriver.removeFolder.
   */
  async removeConversation(repoId: string, conversationId: string): Promise<void> {
    await removeTree(this.dirs(repoId, conversationId).root);
  }
}
