import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type WorkspaceRepo, Workspaces } from '../../src/workspace/index.ts';

// The test's own git runs with the host's environment plus an identity; the code under
// test runs git with its own clean environment.
const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 't',
  GIT_AUTHOR_EMAIL: 't@e',
  GIT_COMMITTER_NAME: 't',
  GIT_COMMITTER_EMAIL: 't@e',
};

/** Runs git in `cwd` and returns its trimmed stdout. */
export const sh = (cwd: string, ...args: string[]): string =>
  execFileSync('git', args, { cwd, env: GIT_ENV, encoding: 'utf8' }).trim();

/** Writes the files (creating folders) and commits everything in `dir`. */
export function commit(dir: string, files: Record<string, string>, message: string): void {
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  sh(dir, 'add', '-A');
  sh(dir, 'commit', '-q', '--allow-empty', '-m', message);
}

export interface Fixture {
  root: string;
  origin: string;
  ws: Workspaces;
  repo: WorkspaceRepo;
  cleanup(): void;
}

/**
 * A temp folder with an origin repository (default branch `branch`, one commit with
 * README.md and an `.errand/` folder) and a Workspaces under `<root>/state`.
 */
export function fixture(branch = 'main'): Fixture {
  const root = mkdtempSync(join(tmpdir(), 'errand-ws-'));
  const origin = join(root, 'origin');
  mkdirSync(origin);
  sh(origin, 'init', '-q', '-b', branch);
  commit(
    origin,
    {
      'README.md': 'v1\n',
      '.errand/container/Containerfile': 'FROM scratch\n',
      '.errand/network-allowlist.yaml': 'allow: []\n',
      '.errand/sandbox.yaml': 'env: {}\n',
    },
    'init',
  );
  return {
    root,
    origin,
    ws: new Workspaces({ root: join(root, 'state') }),
    repo: { id: 'app', gitUrl: origin },
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}
