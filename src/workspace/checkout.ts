import { lstatSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { git } from './git.ts';

/**
 * The git checkout a command runs in (`errand sandbox run` in CI), a repository errand
 * does not own: a sandboxed step may have written to everything of it that was mounted
 * read-write. git here runs with errand's clean environment (git.ts): no replacement
 * objects, no grafts, no fsmonitor or hooks from the checkout's config.
 */
export interface Checkout {
  /** The top of the work tree. */
  top: string;
  /** `<top>/.git`: the git folder, or a file naming it (a worktree, a submodule). */
  dotGit: string;
  /** The git folder and the common one (they differ in a worktree), absolute. */
  gitDirs: string[];
  /**
   * The nearest other folder with a `.git` entry between the current folder and the
   * filesystem root, when there is one: this checkout lies inside another (a submodule,
   * a nested clone), or a sandboxed step made a repository in a subfolder so that a later
   * step run there finds it first. Undefined when there is none.
   */
  nestedIn?: string;
}

/**
 * The checkout holding `cwd`, or undefined when no folder from `cwd` up has a `.git`
 * entry. When one has but git cannot use it (a damaged `.git`, a repository of another
 * user), this is `git_failed`: a step must not turn a checkout into "no checkout".
 */
export async function findCheckout(cwd: string): Promise<Checkout | undefined> {
  const real = realpathSync(cwd);
  const withGit: string[] = [];
  for (let dir = real; ; dir = dirname(dir)) {
    if (lstatSync(join(dir, '.git'), { throwIfNoEntry: false })) withGit.push(dir);
    if (dirname(dir) === dir) break;
  }
  if (withGit.length === 0) return undefined;
  const r = await git(
    [
      '-C',
      real,
      'rev-parse',
      '--path-format=absolute',
      '--show-toplevel',
      '--absolute-git-dir',
      '--git-common-dir',
    ],
    { step: 'rev-parse', repoId: real, offline: true },
  );
  const [top, gitDir, commonDir] = r.stdout.toString().trim().split('\n') as [
    string,
    string,
    string,
  ];
  return {
    top,
    dotGit: join(top, '.git'),
    gitDirs: [...new Set([gitDir, commonDir])],
    nestedIn: withGit.find((d) => d !== top),
  };
}

/**
 * The checkout's default branch and its commit: origin's HEAD when known, else a local
 * main or master. Undefined when it has none of them.
 */
export async function checkoutDefaultCommit(
  c: Checkout,
): Promise<{ branch: string; commit: string } | undefined> {
  const opts = { step: 'rev-parse', repoId: c.top, offline: true };
  const originHead = await git(
    ['-C', c.top, 'symbolic-ref', '--quiet', 'refs/remotes/origin/HEAD'],
    {
      ...opts,
      step: 'symbolic-ref',
    },
  ).catch(() => undefined);
  const candidates = [
    originHead?.stdout.toString().trim(),
    'refs/heads/main',
    'refs/heads/master',
  ].filter((x): x is string => !!x);
  for (const ref of candidates) {
    const r = await git(
      ['-C', c.top, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`],
      opts,
    ).catch(() => undefined);
    if (r)
      return {
        branch: ref.replace(/^refs\/(heads|remotes)\//, ''),
        commit: r.stdout.toString().trim(),
      };
  }
  return undefined;
}

/** Whether a full object id names a commit (not a tag or tree) present in the checkout. */
export async function checkoutHasCommit(c: Checkout, id: string): Promise<boolean> {
  const r = await git(
    ['-C', c.top, 'rev-parse', '--verify', '--quiet', '--end-of-options', `${id}^{commit}`],
    { step: 'rev-parse', repoId: c.top, offline: true },
  ).catch(() => undefined);
  return r?.stdout.toString().trim() === id;
}

/**
 * The URL of the checkout's `origin` remote as its config writes it (a relative path made
 * absolute against the checkout), or undefined when it has no origin. Read with
 * `git config`, which runs nothing the config names, in errand's clean environment.
 */
export async function checkoutOriginUrl(c: Checkout): Promise<string | undefined> {
  // `--default ''`: no origin is an empty answer, so a failure is a real one (git_failed).
  const r = await git(['-C', c.top, 'config', '--get', '--default', '', 'remote.origin.url'], {
    step: 'config',
    repoId: c.top,
    offline: true,
  });
  const url = r.stdout.toString().trim();
  if (!url) return undefined;
  return url.startsWith('./') || url.startsWith('../') ? resolve(c.top, url) : url;
}
