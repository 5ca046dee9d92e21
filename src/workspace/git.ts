import { execFile } from 'node:child_process';
import { ErrandError } from '../util/errors.ts';

/** Credentials in a URL (`https://user:token@host/…`) never reach a message or log. */
export function redactUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, '$1***@');
}

// git must not read the host user's or system's config (credential helpers, url rewrites,
// hooks paths) nor ask for a password on a terminal.
const GIT_ENV: NodeJS.ProcessEnv = {
  PATH: process.env.PATH,
  HOME: '/nonexistent',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_TERMINAL_PROMPT: '0',
  GIT_ASKPASS: '/bin/false',
  SSH_ASKPASS: '/bin/false',
  LC_ALL: 'C',
};

export interface GitResult {
  stdout: Buffer;
  stderr: string;
}

/** Runs git without a shell; a failure is an ErrandError naming the step, with stderr's tail. */
export function git(
  args: string[],
  opts: { cwd?: string; step: string; repoId: string; timeoutMs?: number; input?: Buffer },
): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'git',
      args,
      {
        cwd: opts.cwd,
        env: GIT_ENV,
        encoding: 'buffer',
        maxBuffer: 256 * 1024 * 1024,
        timeout: opts.timeoutMs ?? 10 * 60_000,
      },
      (err, stdout, stderr) => {
        const errText = stderr.toString('utf8');
        if (err) {
          const tail = redactUrl(errText.trim().split('\n').slice(-3).join(' | '));
          reject(
            new ErrandError(
              'git_failed',
              `git ${opts.step} failed for repository ${opts.repoId}: ${tail || redactUrl(err.message)}`,
            ),
          );
          return;
        }
        resolve({ stdout, stderr: errText });
      },
    );
    if (opts.input) child.stdin?.end(opts.input);
  });
}
