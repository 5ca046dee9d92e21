import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The tests' own git runs with the host's environment plus an identity; the code under
// test runs git with its own clean environment.
export const GIT_ENV: NodeJS.ProcessEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: 't',
  GIT_AUTHOR_EMAIL: 't@e',
  GIT_COMMITTER_NAME: 't',
  GIT_COMMITTER_EMAIL: 't@e',
};

/** Runs git in `cwd` and returns its trimmed stdout. */
export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, env: GIT_ENV, encoding: 'utf8' }).trim();
}

/** Writes the files (creating folders) and commits everything in `dir`. */
export function commit(dir: string, files: Record<string, string>, message: string): void {
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  git(dir, 'add', '-A');
  git(dir, 'commit', '-q', '--allow-empty', '-m', message);
}

/** A new repository at `dir` on branch `main` with one commit of `files`. */
export function initRepo(dir: string, files: Record<string, string>, branch = 'main'): string {
  mkdirSync(dir, { recursive: true });
  git(dir, 'init', '-q', '-b', branch);
  commit(dir, files, 'init');
  return dir;
}

/**
 * Commits `paths` (repository paths, each naming the blob `blob`) on top of HEAD, through
 * an index of its own and without writing them to the work tree: a folder of a million
 * names costs one blob. Returns the new commit, which HEAD's branch then names.
 */
export function commitBlobNames(
  dir: string,
  blob: string,
  paths: Iterable<string>,
  message: string,
): string {
  const tmp = mkdtempSync(join(tmpdir(), 'errand-index-'));
  const env = { ...GIT_ENV, GIT_INDEX_FILE: join(tmp, 'index') };
  const run = (args: string[], input?: string) =>
    execFileSync('git', args, {
      cwd: dir,
      env,
      input,
      encoding: 'utf8',
      maxBuffer: 1 << 30,
    }).trim();
  try {
    run(['read-tree', 'HEAD']);
    const lines: string[] = [];
    for (const p of paths) lines.push(`100644 ${blob}\t${p}\n`);
    run(['update-index', '--add', '--index-info'], lines.join(''));
    const tree = run(['write-tree']);
    const commit = run(['commit-tree', tree, '-p', 'HEAD', '-m', message]);
    run(['update-ref', 'HEAD', commit]);
    return commit;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
