import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type WorkspaceRepo, Workspaces } from '../../src/workspace/index.ts';
import { commit, git as sh } from '../harness/git.ts';

export { commit, git as sh } from '../harness/git.ts';

export interface Fixture {
  root: string;
  origin: string;
  ws: Workspaces;
  repo: WorkspaceRepo;
  cleanup(): void;
}

/**
 * A temp folder with an origin repository (default branch `branch`, one commit with
 * README.md and an `.errand/` folder) and a Workspaces with its mirrors under
 * `<root>/state` and its conversations under `<root>/sandboxes/conversations`.
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
    ws: new Workspaces({
      root: join(root, 'state'),
      conversations: join(root, 'sandboxes', 'conversations'),
    }),
    repo: { id: 'app', gitUrl: origin },
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
}
