import { chmodSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ErrandError } from '../util/errors.ts';
import { git, redactUrl } from './git.ts';
import { TrustedTree } from './trusted-tree.ts';

export interface WorkspaceRepo {
  id: string;
  gitUrl: string;
  /** The configured default branch; detected from the remote's HEAD when absent. */
  defaultBranch?: string;
}

/** A conversation's host folders; only these are ever mounted into its sandbox. */
export interface ConversationDirs {
  root: string;
  workspace: string;
  agentState: string;
  inbox: string;
  outbox: string;
  storage: string;
}

const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function checkId(kind: string, id: string): void {
  if (!SAFE_ID.test(id) || id.includes('..'))
    throw new ErrandError('usage', `invalid ${kind} id ${JSON.stringify(id.slice(0, 80))}`);
}

/**
 * Git on the host: a bare mirror per repository, a full clone per conversation, and the
 * trusted files (`.errand/`) read from the mirror's default branch, never from a clone the
 * agent can change.
 */
export class Workspaces {
  readonly #root: string;
  #refreshing = new Map<string, Promise<{ defaultBranch: string; commit: string }>>();
  #branches = new Map<string, string>();

  constructor(opts: { root: string }) {
    this.#root = opts.root;
    mkdirSync(join(opts.root, 'mirrors'), { recursive: true, mode: 0o700 });
    mkdirSync(join(opts.root, 'conversations'), { recursive: true, mode: 0o700 });
    chmodSync(opts.root, 0o700);
  }

  mirrorPath(repoId: string): string {
    checkId('repository', repoId);
    return join(this.#root, 'mirrors', `${repoId}.git`);
  }

  /**
   * Creates or fetches (with prune) the repository's mirror. Concurrent callers share one
   * fetch. Returns the default branch and its commit.
   */
  refreshMirror(repo: WorkspaceRepo): Promise<{ defaultBranch: string; commit: string }> {
    const running = this.#refreshing.get(repo.id);
    if (running) return running;
    const p = this.#refresh(repo).finally(() => this.#refreshing.delete(repo.id));
    this.#refreshing.set(repo.id, p);
    return p;
  }

  async #refresh(repo: WorkspaceRepo): Promise<{ defaultBranch: string; commit: string }> {
    const mirror = this.mirrorPath(repo.id);
    const run = (args: string[], step: string) => git(args, { step, repoId: repo.id });
    if (!existsSync(join(mirror, 'HEAD'))) {
      rmSync(mirror, { recursive: true, force: true });
      await run(['clone', '--mirror', '--quiet', repo.gitUrl, mirror], 'clone --mirror');
    } else {
      await run(['-C', mirror, 'remote', 'set-url', 'origin', repo.gitUrl], 'remote set-url');
      await run(['-C', mirror, 'fetch', '--prune', '--quiet', 'origin'], 'fetch --prune');
    }
    const branch = repo.defaultBranch ?? (await this.#detectBranch(repo, mirror));
    const commit = await run(
      ['-C', mirror, 'rev-parse', '--verify', '--quiet', `refs/heads/${branch}^{commit}`],
      'rev-parse',
    ).catch(() => {
      throw new ErrandError(
        'git_failed',
        `The default branch "${branch}" of repository ${repo.id} does not exist. Set repos.${repo.id}.default_branch in the config.`,
      );
    });
    this.#branches.set(repo.id, branch);
    return { defaultBranch: branch, commit: commit.stdout.toString().trim() };
  }

  // The mirror's HEAD is the remote's at clone time; when that branch is gone since, ask
  // the remote again.
  async #detectBranch(repo: WorkspaceRepo, mirror: string): Promise<string> {
    const head = await git(['-C', mirror, 'symbolic-ref', '--quiet', 'HEAD'], {
      step: 'symbolic-ref',
      repoId: repo.id,
    }).catch(() => undefined);
    const local = head?.stdout
      .toString()
      .trim()
      .replace(/^refs\/heads\//, '');
    if (local) {
      const exists = await git(
        ['-C', mirror, 'show-ref', '--verify', '--quiet', `refs/heads/${local}`],
        { step: 'show-ref', repoId: repo.id },
      ).then(
        () => true,
        () => false,
      );
      if (exists) return local;
    }
    const remote = await git(['-C', mirror, 'ls-remote', '--symref', 'origin', 'HEAD'], {
      step: 'ls-remote',
      repoId: repo.id,
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

  async #branch(repo: WorkspaceRepo): Promise<string> {
    return (
      repo.defaultBranch ??
      this.#branches.get(repo.id) ??
      (await this.refreshMirror(repo)).defaultBranch
    );
  }

  /** The default branch of the mirror, read through its object store only. */
  async trusted(repo: WorkspaceRepo): Promise<TrustedTree> {
    return new TrustedTree(
      this.mirrorPath(repo.id),
      `refs/heads/${await this.#branch(repo)}`,
      repo.id,
    );
  }

  /** A file of the default branch, or undefined when it does not exist there. */
  async readTrustedFile(repo: WorkspaceRepo, path: string): Promise<Buffer | undefined> {
    return await (await this.trusted(repo)).readFile(path);
  }

  /** The git tree id of a folder of the default branch, or undefined when absent. */
  async trustedTreeId(repo: WorkspaceRepo, dir: string): Promise<string | undefined> {
    return await (await this.trusted(repo)).treeId(dir);
  }

  /** Writes a folder of the default branch to `destDir`; false when it is absent. */
  async extractTrustedDir(repo: WorkspaceRepo, dir: string, destDir: string): Promise<boolean> {
    return await (await this.trusted(repo)).extractDir(dir, destDir);
  }

  dirs(repoId: string, conversationId: string): ConversationDirs {
    checkId('repository', repoId);
    checkId('conversation', conversationId);
    const root = join(this.#root, 'conversations', repoId, conversationId);
    return {
      root,
      workspace: join(root, 'workspace'),
      agentState: join(root, 'agent'),
      inbox: join(root, 'inbox'),
      outbox: join(root, 'outbox'),
      storage: join(root, 'storage'),
    };
  }

  /**
   * Creates the conversation's folders and, the first time, a self-contained clone of the
   * mirror on the default branch (objects copied, no alternates, origin set to the real
   * URL without credentials). Later calls leave the workspace as the agent left it.
   */
  async prepareConversation(
    repo: WorkspaceRepo,
    conversationId: string,
  ): Promise<{ dirs: ConversationDirs; created: boolean }> {
    const dirs = this.dirs(repo.id, conversationId);
    for (const d of [dirs.root, dirs.agentState, dirs.inbox, dirs.outbox, dirs.storage])
      mkdirSync(d, { recursive: true, mode: 0o700 });
    if (existsSync(join(dirs.workspace, '.git'))) return { dirs, created: false };
    const branch = await this.#branch(repo);
    rmSync(dirs.workspace, { recursive: true, force: true });
    await git(
      [
        'clone',
        '--quiet',
        '--no-local',
        '--no-hardlinks',
        '--branch',
        branch,
        this.mirrorPath(repo.id),
        dirs.workspace,
      ],
      {
        step: 'clone',
        repoId: repo.id,
      },
    );
    await git(
      [
        '-C',
        dirs.workspace,
        'remote',
        'set-url',
        'origin',
        redactUrl(repo.gitUrl).replace('***@', ''),
      ],
      {
        step: 'remote set-url',
        repoId: repo.id,
      },
    );
    return { dirs, created: true };
  }

  async removeConversation(repoId: string, conversationId: string): Promise<void> {
    rmSync(this.dirs(repoId, conversationId).root, { recursive: true, force: true });
  }
}
