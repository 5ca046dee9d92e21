import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RepoConfig } from '../config/index.ts';
import { ALLOWLIST_FILE, parseAllowlist } from '../proxy/index.ts';
import { describeError } from '../util/errors.ts';
import { redactUrl, redactValues, urlCredentials } from '../util/url-credentials.ts';
import { type MirrorState, type WorkspaceRepo, Workspaces } from '../workspace/index.ts';

const CONTAINER_DIR = '.errand/container';

/** What `errand check` found for one repository. */
export interface RepoFindings {
  id: string;
  /** Why the mirror could not be made (git's whole error, redacted); undefined: it was. */
  unreachable?: string;
  /** The default branch and its commit, when reachable. */
  at?: MirrorState;
  /** What is missing or wrong in `.errand/` on the default branch, each with what to add. */
  trusted: string[];
}

/**
 * Makes each repository's mirror the way errand does before a task (Workspaces, with its
 * git environment: no user or system git config, no credential helpers, no prompts), in a
 * folder of its own that is removed afterwards, so a check never races a running errand
 * for its mirrors. Then reads `.errand/` from the default branch as a task would.
 */
export async function checkRepos(
  repos: Array<[string, RepoConfig]>,
  parent: string | undefined,
): Promise<RepoFindings[]> {
  const root = mkdtempSync(join(parent ?? tmpdir(), 'check-'));
  try {
    const workspaces = new Workspaces({ root });
    return await Promise.all(
      repos.map(async ([id, r]) => {
        const repo: WorkspaceRepo = { id, gitUrl: r.git_url, defaultBranch: r.default_branch };
        let at: MirrorState;
        try {
          at = await workspaces.refreshMirror(repo);
        } catch (e) {
          const why = redactValues(redactUrl(describeError(e)), urlCredentials(r.git_url));
          return { id, unreachable: why, trusted: [] };
        }
        return { id, at, trusted: await trustedFindings(workspaces, repo, at) };
      }),
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

async function trustedFindings(
  workspaces: Workspaces,
  repo: WorkspaceRepo,
  at: MirrorState,
): Promise<string[]> {
  const on = `on ${at.defaultBranch}`;
  const found: string[] = [];
  try {
    const allowlist = await workspaces.readTrustedFile(repo, at, ALLOWLIST_FILE);
    if (!allowlist) {
      found.push(
        `no ${ALLOWLIST_FILE} ${on}: no request may leave the sandbox but the model API's; add one with the hosts the project needs (docs/repo-onboarding.md, "The network allowlist")`,
      );
    } else {
      const parsed = parseAllowlist(allowlist.toString('utf8'));
      if (!parsed.ok)
        found.push(
          `${ALLOWLIST_FILE} ${on} is invalid: ${parsed.problem}; tasks will refuse to run`,
        );
    }
  } catch (e) {
    found.push(`${ALLOWLIST_FILE} ${on} cannot be read: ${describeError(e)}`);
  }
  try {
    const files = await Promise.all(
      ['Containerfile', 'Dockerfile'].map((n) =>
        workspaces.readTrustedFile(repo, at, `${CONTAINER_DIR}/${n}`),
      ),
    );
    if (!files.some((f) => f !== undefined)) {
      found.push(
        `no ${CONTAINER_DIR}/Containerfile ${on}: tasks run in errand's base image (git, curl, Node); add one with the project's tools (docs/repo-onboarding.md, "The sandbox image")`,
      );
    }
  } catch (e) {
    found.push(`${CONTAINER_DIR}/ ${on} cannot be read: ${describeError(e)}`);
  }
  return found.map((f) => `${repo.id}: ${f}`);
}
