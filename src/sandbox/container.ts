import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import {
  type ContainerFile,
  type ContainerFolders,
  envFilePath,
  type OwnFiles,
  removeOwnFiles,
  SANDBOX_HOSTNAME,
  writeOwnFiles,
} from './container-folders.ts';
import { runPodman } from './podman.ts';

/** A host folder made visible in the container. Nothing else of the host is. */
export interface SandboxMount {
  source: string;
  target: string;
  readOnly?: boolean;
}

export interface SandboxLimits {
  /** podman memory syntax, e.g. "4g". Swap is capped at the same value (no extra swap). */
  memory?: string;
  cpus?: number;
  pids?: number;
}

/**
 * How the container reaches the network: not at all; through a namespace errand holds (the
 * proxy); or, when the operator turned the network sandbox off for a repository, podman's
 * own default network.
 */
export type SandboxNetwork =
  | { kind: 'none' }
  | { kind: 'netns'; path: string; dns: string }
  | { kind: 'unrestricted' };

export interface ContainerSpec {
  image: string;
  /** Container name; must start with the instance prefix so orphans can be found. */
  name: string;
  command: string[];
  workdir?: string;
  mounts: SandboxMount[];
  /** errand's own files (entrypoint, CA certificate), copied into the container's folder. */
  files?: ContainerFile[];
  env: Record<string, string>;
  limits: SandboxLimits;
  network: SandboxNetwork;
  labels?: Record<string, string>;
  /** Wall-clock limit; the container is killed when it passes. */
  timeoutMs?: number;
  stdin?: string | Readable;
  signal?: AbortSignal;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
}

export type ContainerOutcome = 'exited' | 'timeout' | 'oom' | 'stopped' | 'failed_to_start';

export interface ContainerResult {
  outcome: ContainerOutcome;
  /** The command's exit code, when it ran to an exit. */
  exitCode: number | null;
  /** Last lines podman or the command wrote to stderr, for error replies. */
  stderrTail: string;
}

/** Capabilities a root-in-container workflow needs (package installs, chown in builds). */
export const KEPT_CAPABILITIES = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'SETUID', 'SETGID'] as const;

/** Label on every container errand starts, naming the errand instance that owns it. */
export const MANAGED_LABEL = 'errand.managed';

// podman run exits 125 when it could not create the container, and 126/127 with its own
// "Error:" line when it could not execute the command: setup failures, not the command's
// status (a command may exit 126 or 127 itself, without podman's line).
function setupFailed(code: number | null, stderr: string): boolean {
  return (
    code === null || code === 125 || ((code === 126 || code === 127) && /^Error: /m.test(stderr))
  );
}

export function runArgs(spec: ContainerSpec, envFile: string): string[] {
  const args = [
    'run',
    '--name',
    spec.name,
    '--rm=false',
    '--interactive',
    '--cap-drop=all',
    ...KEPT_CAPABILITIES.map((c) => `--cap-add=${c}`),
    '--security-opt=no-new-privileges',
    '--network',
    spec.network.kind === 'netns'
      ? `ns:${spec.network.path}`
      : spec.network.kind === 'none'
        ? 'none'
        : 'slirp4netns',
    // podman would copy the host's search domains into resolv.conf.
    ...(spec.network.kind === 'netns' ? ['--dns', spec.network.dns, '--dns-search', '.'] : []),
    // podman copies errand's own HTTP(S)_PROXY and NO_PROXY variables in, a proxy's
    // password included; behind errand's proxy (or none) they only name the host's network.
    ...(spec.network.kind === 'unrestricted' ? [] : ['--http-proxy=false']),
    // Not the host's hosts file and name: errand mounts its own (see HOSTS_FILE).
    '--no-hosts',
    '--hostname',
    SANDBOX_HOSTNAME,
    '--env-file',
    envFile,
    '--workdir',
    spec.workdir ?? (spec.mounts.some((m) => m.target === '/workspace') ? '/workspace' : '/'),
    '--init',
  ];
  // podman's own timer is the backstop when errand itself dies before its timer fires.
  if (spec.timeoutMs) args.push('--timeout', String(Math.ceil(spec.timeoutMs / 1000) + 30));
  if (spec.limits.memory)
    args.push('--memory', spec.limits.memory, '--memory-swap', spec.limits.memory);
  if (spec.limits.cpus) args.push('--cpus', String(spec.limits.cpus));
  if (spec.limits.pids) args.push('--pids-limit', String(spec.limits.pids));
  for (const [k, v] of Object.entries({ [MANAGED_LABEL]: 'true', ...spec.labels }))
    args.push('--label', `${k}=${v}`);
  for (const m of spec.mounts) {
    if (
      m.source.includes(',') ||
      m.target.includes(',') ||
      m.source.includes(':') ||
      m.target.includes(':')
    ) {
      throw new Error(`mount paths may not contain ',' or ':' (${m.target})`);
    }
    args.push(
      '--mount',
      `type=bind,source=${m.source},target=${m.target}${m.readOnly ? ',readonly' : ''}`,
    );
  }
  args.push(spec.image, ...spec.command);
  return args;
}

/**
 * Runs one command in a fresh container and removes the container afterwards, whatever
 * happened. The container is not started with --rm: errand inspects it after exit to tell
 * an out-of-memory kill from an ordinary failure, then removes it.
 */
export async function runContainer(
  spec: ContainerSpec,
  podmanEnv: NodeJS.ProcessEnv,
  folders: ContainerFolders,
): Promise<ContainerResult> {
  const started = startContainer(spec, podmanEnv, folders);
  started.arm({ timeoutMs: spec.timeoutMs, signal: spec.signal });
  return await started.result;
}

/** A container whose `podman run` is under way. */
export interface StartedContainer {
  /** Settles once the container has exited and has been removed. */
  result: Promise<ContainerResult>;
  /** False once podman has exited. */
  readonly running: boolean;
  /**
   * Starts the time limit and listens for the stop signal, from now: a container started
   * ahead of its task arms them when its task begins.
   */
  arm(o: { timeoutMs?: number; signal?: AbortSignal }): void;
  /** Kills the container; its outcome is `stopped`. */
  stop(): void;
}

/**
 * Starts `podman run` for the spec and returns at once. Its stdin is `spec.stdin`, or left
 * open for the caller when that is a stream it writes later. Nothing is armed: see `arm`.
 * Its env file and its copies of errand's files are in `folders`, removed with it.
 */
export function startContainer(
  spec: ContainerSpec,
  podmanEnv: NodeJS.ProcessEnv,
  folders: ContainerFolders,
): StartedContainer {
  // Values go through a file, not argv, so they do not show in the host's process list.
  const envFile = envFilePath(folders.env);
  let own: OwnFiles | undefined;
  let stderrTail = '';
  let killedFor: 'timeout' | 'stopped' | undefined;
  let running = true;
  let timer: NodeJS.Timeout | undefined;
  let signal: AbortSignal | undefined;
  const kill = (why: 'timeout' | 'stopped') => {
    if (killedFor || !running) return;
    killedFor = why;
    void runPodman(['kill', '--signal', 'KILL', spec.name], {
      env: podmanEnv,
      timeoutMs: 30_000,
    });
  };
  const onAbort = () => kill('stopped');
  const finish = async (code: number | null): Promise<ContainerResult> => {
    running = false;
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    if (killedFor) return { outcome: killedFor, exitCode: code, stderrTail: tail(stderrTail) };
    if (setupFailed(code, stderrTail)) {
      return { outcome: 'failed_to_start', exitCode: code, stderrTail: tail(stderrTail) };
    }
    // cgroup v2 reports OOM kills to podman; on cgroup v1 (these machines) it does not, and
    // a SIGKILL (137) errand did not send, under a memory limit, is the kernel's OOM killer.
    const oom =
      (await oomKilled(spec.name, podmanEnv)) || (code === 137 && spec.limits.memory !== undefined);
    if (oom) return { outcome: 'oom', exitCode: code, stderrTail: tail(stderrTail) };
    return { outcome: 'exited', exitCode: code, stderrTail: tail(stderrTail) };
  };
  const cleanup = async () => {
    rmSync(envFile, { force: true });
    await removeContainer(spec.name, podmanEnv);
    // Only once the container is gone: its mounts are these files.
    if (own) removeOwnFiles(own);
  };
  let result: Promise<ContainerResult>;
  try {
    writeFileSync(envFile, envFileText(spec.env), { mode: 0o600, flag: 'wx' });
    own = writeOwnFiles(folders.files, spec.files ?? []);
    const mounts = [...spec.mounts, ...own.mounts];
    const child = spawn('podman', runArgs({ ...spec, mounts }, envFile), {
      env: podmanEnv,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (c: Buffer) => spec.onStdout?.(c));
    child.stderr.on('data', (c: Buffer) => {
      stderrTail = (stderrTail + c.toString('utf8')).slice(-4000);
      spec.onStderr?.(c);
    });
    child.stdin.on('error', () => undefined);
    if (typeof spec.stdin === 'string') child.stdin.end(spec.stdin);
    else if (spec.stdin) spec.stdin.pipe(child.stdin);
    else child.stdin.end();
    result = new Promise<number | null>((resolve) => {
      child.once('error', (e) => {
        stderrTail += `\n${e.message}`;
        resolve(null);
      });
      child.once('close', (c) => resolve(c));
    })
      .then(finish)
      .finally(cleanup);
  } catch (e) {
    running = false;
    result = cleanup().then(() => Promise.reject(e));
  }
  return {
    result,
    get running() {
      return running;
    },
    arm: (o) => {
      if (o.timeoutMs) timer = setTimeout(() => kill('timeout'), o.timeoutMs);
      signal = o.signal;
      if (signal?.aborted) onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
    },
    stop: () => kill('stopped'),
  };
}

async function oomKilled(name: string, env: NodeJS.ProcessEnv): Promise<boolean> {
  const r = await runPodman(['inspect', '--format', '{{.State.OOMKilled}}', name], {
    env,
    timeoutMs: 30_000,
  });
  return r.code === 0 && r.stdout.trim() === 'true';
}

export async function removeContainer(name: string, env: NodeJS.ProcessEnv): Promise<void> {
  await runPodman(['rm', '--force', '--time', '0', name], { env, timeoutMs: 60_000 });
}

/**
 * Removes containers an earlier errand process left behind (killed mid-task). Only
 * containers carrying this instance's label are touched; `exitedOnly` spares running ones
 * (another `errand sandbox run` may own them).
 */
export async function removeOrphans(
  instance: string,
  env: NodeJS.ProcessEnv,
  opts: { exitedOnly?: boolean } = {},
): Promise<string[]> {
  const r = await runPodman(
    [
      'ps',
      '--all',
      '--filter',
      `label=${MANAGED_LABEL}=true`,
      '--filter',
      `label=errand.instance=${instance}`,
      ...(opts.exitedOnly ? ['--filter', 'status=exited'] : []),
      '--format',
      '{{.Names}}',
    ],
    { env, timeoutMs: 60_000 },
  );
  const names = r.stdout
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names) await removeContainer(n, env);
  return names;
}

/** Names must be shell-safe and values one line: podman's env-file has no quoting. */
export function checkEnv(env: Record<string, string>): void {
  for (const [k, v] of Object.entries(env)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k))
      throw new Error(`invalid environment variable name ${k}`);
    if (/[\r\n\0]/.test(v)) throw new Error(`environment variable ${k} contains a line break`);
  }
}

function envFileText(env: Record<string, string>): string {
  checkEnv(env);
  return Object.entries(env)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
}

function tail(text: string, lines = 20): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}
