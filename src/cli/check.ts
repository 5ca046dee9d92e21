import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { promisify } from 'node:util';
import { probeEmail } from '../channels/email/index.ts';
import { probeSlack } from '../channels/slack/index.ts';
import {
  defaultStateDir,
  formatConfigIssues,
  loadServerConfig,
  type RepoConfig,
  type ServerConfig,
  stateDir,
} from '../config/index.ts';
import { dashboardExposure } from '../dashboard/index.ts';
import { BASE_IMAGE, ensurePodmanEnv, podmanVersion, runPodman } from '../sandbox/index.ts';
import { checkRepos } from './check-repos.ts';
import { MIN_NODE_TEXT, nodeTooOld } from './node-version.ts';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  id: string;
  title: string;
  status: CheckStatus;
  detail: string;
  /** A command or edit that fixes a failure. */
  fix?: string;
  affectsExit: boolean;
}

/** What `errand check` verifies, in order; `affectsExit` checks decide its exit code. */
export const CHECKS = [
  { id: 'node', title: `Node.js is ${MIN_NODE_TEXT} or newer (24 recommended)`, affectsExit: true },
  { id: 'git', title: 'git is installed', affectsExit: true },
  { id: 'podman', title: 'podman 4 or newer is installed', affectsExit: true },
  { id: 'container', title: 'a container actually starts (runc, no network)', affectsExit: true },
  {
    id: 'rootless',
    title: 'rootless setup: subuid/subgid, newuidmap, /dev/net/tun',
    affectsExit: true,
  },
  { id: 'config', title: 'the config file is valid', affectsExit: true },
  { id: 'state', title: 'the state folder is writable', affectsExit: true },
  // A warning: bound to 0.0.0.0 in a container whose port only the host's loopback
  // publishes, no login is what the operator wants.
  {
    id: 'exposure',
    title: 'the dashboard is not open to the network without a login',
    affectsExit: false,
  },
  // Cloned as errand clones it (check-repos.ts), so a pass means the clone works.
  { id: 'repos', title: 'each repository is reachable with git', affectsExit: false },
  {
    id: 'trusted',
    title: 'each default branch has .errand/network-allowlist.yaml and .errand/container/',
    affectsExit: false,
  },
  { id: 'agent', title: 'each repository has an agent credential', affectsExit: false },
  {
    id: 'channels',
    title: 'email and Slack logins work (IMAP, SMTP, Slack tokens)',
    affectsExit: false,
  },
] as const;

type CheckId = (typeof CHECKS)[number]['id'];

const run = promisify(execFile);

async function version(cmd: string, args: string[]): Promise<string | undefined> {
  try {
    const { stdout } = await run(cmd, args, { timeout: 15_000 });
    return stdout.trim();
  } catch {
    return undefined;
  }
}

function result(id: CheckId, status: CheckStatus, detail: string, fix?: string): CheckResult {
  const c = CHECKS.find((x) => x.id === id)!;
  return { id, title: c.title, status, detail, fix, affectsExit: c.affectsExit };
}

const APT = 'apt-get install -y podman runc catatonit uidmap slirp4netns';

export async function runChecks(
  opts: { configPath?: string; env?: NodeJS.ProcessEnv; cwd?: string; image?: string } = {},
): Promise<CheckResult[]> {
  const env = opts.env ?? process.env;
  const out: CheckResult[] = [];

  out.push(
    !nodeTooOld(process.versions.node)
      ? result('node', 'ok', `Node ${process.versions.node}`)
      : result(
          'node',
          'fail',
          `Node ${process.versions.node} is too old`,
          'bash scripts/node.sh installs Node 24 into ~/.cache/errand',
        ),
  );

  const git = await version('git', ['--version']);
  out.push(
    git
      ? result('git', 'ok', git)
      : result('git', 'fail', 'git was not found on PATH', 'apt-get install -y git'),
  );

  // The config decides the state folder, which holds podman's settings: load it first.
  const loaded = await loadServerConfig({ path: opts.configPath, env, cwd: opts.cwd });
  const config: ServerConfig | undefined = loaded.status === 'ok' ? loaded.config : undefined;
  const state = config ? stateDir(config, env) : undefined;

  const podmanEnv = await ensurePodmanEnv(state ?? defaultStateDir(env), env).catch(() => env);
  const pv = await podmanVersion(podmanEnv);
  if (!pv) {
    out.push(result('podman', 'fail', 'podman was not found or does not answer', APT));
    out.push(result('container', 'skip', 'needs podman'));
  } else {
    const major = Number(pv.split('.')[0]);
    out.push(
      major >= 4
        ? result('podman', 'ok', `podman ${pv}`)
        : result('podman', 'fail', `podman ${pv} is older than 4`, APT),
    );
    const image = opts.image ?? BASE_IMAGE;
    const exists = await runPodman(['image', 'exists', image], {
      env: podmanEnv,
      timeoutMs: 30_000,
    });
    if (exists.code !== 0) {
      out.push(
        result('container', 'fail', `image ${image} is missing`, 'bash scripts/base-image.sh'),
      );
    } else {
      // --init as errand's sandboxes use it: it needs catatonit, which podman only recommends.
      const r = await runPodman(['run', '--rm', '--init', '--network', 'none', image, 'true'], {
        env: podmanEnv,
        timeoutMs: 120_000,
      });
      out.push(
        r.code === 0
          ? result('container', 'ok', `podman run --rm --init --network none ${image} true`)
          : result(
              'container',
              'fail',
              `podman run failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`,
              `${APT}   # runc is required; crun fails on hybrid cgroups`,
            ),
      );
    }
  }

  out.push(rootlessCheck());

  if (loaded.status === 'ok' && loaded.warnings.length > 0) {
    out.push(
      result(
        'config',
        'warn',
        `${loaded.path} is valid, but ${loaded.warnings.map((w) => w.message).join('; ')}`,
        loaded.warnings.map((w) => w.fix).join(' && '),
      ),
    );
  } else if (loaded.status === 'ok') {
    out.push(
      result(
        'config',
        'ok',
        loaded.source === 'file'
          ? `${loaded.path} is valid`
          : `no config file at ${loaded.path}; using embedded defaults`,
      ),
    );
  } else if (loaded.status === 'missing') {
    out.push(
      result(
        'config',
        'fail',
        `no config file at ${loaded.path}`,
        `errand init --config ${loaded.path}`,
      ),
    );
  } else {
    out.push(result('config', 'fail', formatConfigIssues(loaded.issues), `edit ${loaded.path}`));
  }

  if (state) {
    try {
      mkdirSync(state, { recursive: true, mode: 0o700 });
      accessSync(state, constants.W_OK);
      out.push(result('state', 'ok', state));
    } catch (e) {
      out.push(
        result(
          'state',
          'fail',
          `${state}: ${(e as Error).message}`,
          `mkdir -p ${state} && chmod 700 ${state}, or set execution.state_dir`,
        ),
      );
    }
  } else {
    out.push(result('state', 'skip', 'needs a valid config'));
  }

  out.push(exposureCheck(config));

  const repos = Object.entries(config?.repos ?? {});
  if (repos.length === 0) {
    out.push(
      result('repos', 'skip', config ? 'no repositories configured' : 'needs a valid config'),
    );
    out.push(
      result('trusted', 'skip', config ? 'no repositories configured' : 'needs a valid config'),
    );
    out.push(
      result('agent', 'skip', config ? 'no repositories configured' : 'needs a valid config'),
    );
    out.push(
      result('channels', 'skip', config ? 'no repositories configured' : 'needs a valid config'),
    );
  } else {
    const found = await checkRepos(repos, state);
    const bad = found.filter((f) => f.unreachable !== undefined);
    out.push(
      bad.length === 0
        ? result(
            'repos',
            'ok',
            `${found.length} reachable: ${found.map((f) => `${f.id} (${f.at?.defaultBranch})`).join(', ')}`,
          )
        : result(
            'repos',
            'warn',
            bad.map((b) => `${b.id}: ${b.unreachable}`).join('\n'),
            "check repos.ID.git_url; errand's git reads no ~/.gitconfig or credential helper, so a token goes in the URL (git_url: !secret NAME) and ssh uses the keys of this user's ~/.ssh",
          ),
    );
    const trusted = found.flatMap((f) => f.trusted);
    out.push(
      bad.length === found.length
        ? result('trusted', 'skip', 'needs a reachable repository')
        : trusted.length === 0
          ? result('trusted', 'ok', 'every reachable repository has both on its default branch')
          : result(
              'trusted',
              'warn',
              trusted.join('\n'),
              'add the files by pull request to the default branch (docs/repo-onboarding.md)',
            ),
    );
    const missing = repos
      .filter(([, r]) => !r.agent.api_key && !r.agent.oauth_token)
      .map(([id]) => id);
    out.push(
      missing.length === 0
        ? result('agent', 'ok', 'every repository has an API key or OAuth token')
        : result(
            'agent',
            'warn',
            `no agent credential for: ${missing.join(', ')}`,
            `set repos.${missing[0]}.agent.api_key: !secret ANTHROPIC_API_KEY in the config and ANTHROPIC_API_KEY=... in secrets.env`,
          ),
    );
    out.push(await channelsCheck(repos));
  }
  return out;
}

async function channelsCheck(repos: Array<[string, RepoConfig]>): Promise<CheckResult> {
  const configured = repos.filter(([, r]) => r.email || r.slack);
  if (configured.length === 0) return result('channels', 'skip', 'no email or Slack configured');
  const problems = (
    await Promise.all(
      configured.map(async ([id, r]) => [
        ...(r.email ? await probeEmail(r.email) : []).map((p) => `${id} email: ${p}`),
        ...(r.slack ? await probeSlack(r.slack) : []).map((p) => `${id} slack: ${p}`),
      ]),
    )
  ).flat();
  return problems.length === 0
    ? result('channels', 'ok', `${configured.length} repositories log in`)
    : result(
        'channels',
        'warn',
        problems.join('\n'),
        'check the host, port, user and password (an app password for most providers; docs/email-setup.md) or the Slack tokens (docs/slack-setup.md)',
      );
}

function exposureCheck(config: ServerConfig | undefined): CheckResult {
  if (!config) return result('exposure', 'skip', 'needs a valid config');
  const exposure = dashboardExposure(config.dashboard);
  if (exposure) return result('exposure', 'warn', exposure.exposed, exposure.fix);
  return result(
    'exposure',
    'ok',
    `the dashboard on ${config.dashboard.host} asks for a login or is reachable only from this machine`,
  );
}

function rootlessCheck(): CheckResult {
  if (process.getuid?.() === 0)
    return result('rootless', 'skip', 'running as root: containers run rootful');
  const user = userInfo().username;
  const problems: string[] = [];
  const fixes: string[] = [];
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
    if (
      !text
        .split('\n')
        .some((l) => l.startsWith(`${user}:`) || l.startsWith(`${process.getuid?.()}:`))
    ) {
      problems.push(`no ${file} entry for ${user}`);
      fixes.push(`sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user}`);
    }
  }
  if (!existsSync('/usr/bin/newuidmap')) {
    problems.push('newuidmap is missing');
    fixes.push('sudo apt-get install -y uidmap');
  }
  try {
    accessSync('/dev/net/tun', constants.R_OK);
  } catch {
    problems.push('/dev/net/tun is not readable (only needed for podman networks)');
  }
  return problems.length === 0
    ? result('rootless', 'ok', `subuid/subgid set for ${user}`)
    : result(
        'rootless',
        'fail',
        problems.join('; '),
        [...new Set(fixes)].join(' && ') || undefined,
      );
}

const MARK: Record<CheckStatus, string> = { ok: '✓', warn: '!', fail: '✗', skip: '-' };

export function formatChecks(results: CheckResult[]): string {
  const lines = results.map((r) => {
    const detail = r.detail.includes('\n')
      ? `\n${r.detail.replace(/^/gm, '      ')}`
      : `: ${r.detail}`;
    return `${MARK[r.status]} ${r.title}${detail}${r.fix && r.status !== 'ok' ? `\n    fix: ${r.fix}` : ''}`;
  });
  const failed = results.filter((r) => r.status === 'fail' && r.affectsExit).length;
  lines.push(
    '',
    failed === 0
      ? 'All required checks passed.'
      : `${failed} required check${failed === 1 ? '' : 's'} failed.`,
  );
  return lines.join('\n');
}
