import { execFile } from 'node:child_process';
import { ErrandError } from '../util/errors.ts';
import { absoluteSearchPath } from '../util/search-path.ts';
import { redactUrl, redactValues, urlCredentials } from '../util/url-credentials.ts';

// git must not read the host user's or system's config (credential helpers, url rewrites,
// hooks paths, templates) nor ask for a password on a terminal. Pathspecs are literal, so a
// trusted path like `.errand/*` cannot match more than itself. ssh finds its keys through
// the passwd entry, not HOME; proxies and an ssh agent are passed through when set.
//
// git also reads repositories errand does not own (a CI checkout a sandboxed step could
// have written to), so nothing in a repository may change what an object id reads as, or
// run a command: replacement objects (`refs/replace/*`) and grafts are off, and the
// settings below win over the repository's own config (they count as `git -c`; a
// repository's `core.useReplaceRefs=true` overrides GIT_NO_REPLACE_OBJECTS, not these).
// GIT_GRAFT_FILE names a path that cannot exist (below a device file), so info/grafts is
// never read.
const FORCED_CONFIG: Array<[string, string]> = [
  ['core.useReplaceRefs', 'false'],
  ['core.fsmonitor', 'false'],
  ['core.hooksPath', '/dev/null'],
];
const PASS_THROUGH = ['http_proxy', 'https_proxy', 'HTTPS_PROXY', 'no_proxy', 'NO_PROXY'];
const GIT_ENV: NodeJS.ProcessEnv = {
  PATH: absoluteSearchPath(process.env.PATH),
  HOME: '/nonexistent',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_TERMINAL_PROMPT: '0',
  GIT_ASKPASS: '/bin/false',
  SSH_ASKPASS: '/bin/false',
  GIT_LITERAL_PATHSPECS: '1',
  GIT_NO_REPLACE_OBJECTS: '1',
  GIT_GRAFT_FILE: '/dev/null/grafts',
  GIT_CONFIG_COUNT: String(FORCED_CONFIG.length),
  ...Object.fromEntries(
    FORCED_CONFIG.flatMap(([k, v], i) => [
      [`GIT_CONFIG_KEY_${i}`, k],
      [`GIT_CONFIG_VALUE_${i}`, v],
    ]),
  ),
  LC_ALL: 'C',
  ...Object.fromEntries(
    [...PASS_THROUGH, 'SSH_AUTH_SOCK']
      .filter((k) => process.env[k] !== undefined)
      .map((k) => [k, process.env[k]]),
  ),
};

// A command that only reads a repository errand does not own reaches no remote: a partial
// clone fetches an object it lacks from its promisor remote as the repository's config says
// (`remote.*.uploadpack` is a command, `ext::` URLs run one), so a repository a sandboxed
// step planted would run its command on the host. GIT_NO_LAZY_FETCH stops that fetch;
// an empty GIT_ALLOW_PROTOCOL refuses every transport, whatever the config allows, for a
// git without it.
const OFFLINE_ENV: NodeJS.ProcessEnv = {
  ...GIT_ENV,
  GIT_NO_LAZY_FETCH: '1',
  GIT_ALLOW_PROTOCOL: '',
};

export interface GitResult {
  stdout: Buffer;
  stderr: string;
}

export interface GitOptions {
  /** What the step is called in an error: `fetch --prune`, `clone`. */
  step: string;
  /** The repository named in an error. */
  repoId: string;
  cwd?: string;
  timeoutMs?: number;
  /** What to do next, appended to the error message. */
  hint?: string;
  /** The command only reads: it may reach no remote (see OFFLINE_ENV). */
  offline?: boolean;
  /**
   * The URL of the remote the command talks to when it is not among the arguments (a
   * fetch from `origin`): its credentials are hidden in an error too.
   */
  remoteUrl?: string;
  /**
   * Stops git once its output passes `bytes` and fails with `error()` instead (default:
   * 256 MiB, then a `git_failed`): a listing or blob of a repository errand does not
   * trust must not be held whole in memory.
   */
  maxOutput?: { bytes: number; error: () => Error };
}

const MAX_ERROR_LINES = 40;
const MAX_ERROR_CHARS = 4000;

/**
 * Runs git without a shell. A failure is an ErrandError (`git_failed`) naming the
 * repository and the step, with git's error (its last 40 lines, at most 4000 characters);
 * URLs in it are redacted, and so are the credentials of a URL among `args` wherever git
 * quotes them. The
 * original error is not attached as `cause`: its message holds the full command line.
 */
export function git(args: string[], opts: GitOptions): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      args,
      {
        cwd: opts.cwd,
        env: opts.offline ? OFFLINE_ENV : GIT_ENV,
        encoding: 'buffer',
        maxBuffer: opts.maxOutput?.bytes ?? 256 * 1024 * 1024,
        timeout: opts.timeoutMs ?? 10 * 60_000,
      },
      (err, stdout, stderr) => {
        const errText = stderr.toString('utf8');
        if (!err) {
          resolve({ stdout, stderr: errText });
          return;
        }
        if (opts.maxOutput && err.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER') {
          reject(opts.maxOutput.error());
          return;
        }
        const redact = (text: string) =>
          redactValues(redactUrl(text), [...args, opts.remoteUrl ?? ''].flatMap(urlCredentials));
        // git's whole error: its first lines often say why (`Host key verification
        // failed.` above `fatal: Could not read from remote repository.` and two lines of
        // advice). Bounded, since a remote writes what it likes to stderr; cut after
        // redaction, so no cut leaves a credential without the URL that marks it.
        const lines = redact(
          errText.trim().split('\n').filter(Boolean).slice(-MAX_ERROR_LINES).join(' | '),
        ).slice(-MAX_ERROR_CHARS);
        const why =
          lines ||
          (err.killed ? 'timed out' : `exit ${typeof err.code === 'number' ? err.code : '?'}`);
        const hint = opts.hint ? ` ${opts.hint}` : '';
        reject(
          new ErrandError(
            'git_failed',
            redact(`git ${opts.step} failed for repository ${opts.repoId}: ${why}.${hint}`),
          ),
        );
      },
    );
  });
}

/** Like git(), but a failure is `false` instead of an error (for probes like show-ref). */
export function gitOk(args: string[], opts: GitOptions): Promise<boolean> {
  return git(args, opts).then(
    () => true,
    () => false,
  );
}
