import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { absoluteSearchPath } from '../util/search-path.ts';

/** The base image errand's own tests and `errand check` use; built by scripts/base-image.sh. */
export const BASE_IMAGE = 'localhost/errand-base:bookworm';

// podman cannot raise rlimits above the hard limit, and its default nofile (1048576)
// is above it on these machines: ask for at most what the host allows.
const WANTED_NOFILE = 20_000;

function hardNofile(): number {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8');
    const m = /^Max open files\s+\S+\s+(\S+)/m.exec(limits);
    if (m && m[1] !== 'unlimited') return Number(m[1]);
  } catch {
    // Not Linux /proc: fall through.
  }
  return WANTED_NOFILE;
}

/**
 * errand's own containers.conf, pointed at by CONTAINERS_CONF so nothing under /etc is
 * edited: runc (crun fails where cgroups are hybrid) and ulimits within the hard limits.
 */
export function containersConf(): string {
  const nofile = Math.min(WANTED_NOFILE, hardNofile());
  return `# Written by errand; changes are overwritten.
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=4096:4096"]

[engine]
runtime = "runc"
`;
}

/** Writes errand's containers.conf under the state folder and returns podman's environment. */
export async function ensurePodmanEnv(
  stateDir: string,
  base: NodeJS.ProcessEnv = process.env,
): Promise<NodeJS.ProcessEnv> {
  const dir = join(stateDir, 'podman');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, 'containers.conf');
  const text = containersConf();
  if (!existsSync(path) || readFileSync(path, 'utf8') !== text)
    writeFileSync(path, text, { mode: 0o644 });
  // podman, and the helpers it and errand start by name (conmon, the runtime, unshare),
  // must not be found in the current folder: in CI that is a checkout a step wrote to.
  return { ...base, PATH: absoluteSearchPath(base.PATH), CONTAINERS_CONF: path };
}

export interface PodmanResult {
  code: number | null;
  stdout: string;
  stderr: string;
  signal: NodeJS.Signals | null;
}

/** Runs podman without a shell and collects its output. A missing podman gives code null. */
export function runPodman(
  args: string[],
  opts: { env: NodeJS.ProcessEnv; timeoutMs?: number; input?: string; signal?: AbortSignal },
): Promise<PodmanResult> {
  return new Promise((resolve) => {
    const child = spawn('podman', args, {
      env: opts.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      signal: opts.signal,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => {
      stdout += c;
    });
    child.stderr.on('data', (c) => {
      stderr += c;
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
    const timer = opts.timeoutMs
      ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs)
      : undefined;
    child.once('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: stderr + e.message, signal: null });
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, signal });
    });
  });
}

export async function podmanVersion(env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const r = await runPodman(['version', '--format', '{{.Client.Version}}'], {
    env,
    timeoutMs: 30_000,
  });
  return r.code === 0 ? r.stdout.trim() : undefined;
}
