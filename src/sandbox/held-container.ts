import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { ownedName } from '../util/owned-names.ts';
import { removeTree } from '../util/remove-tree.ts';
import {
  type ContainerResult,
  type ContainerSpec,
  checkEnv,
  type StartedContainer,
  startContainer,
} from './container.ts';
import type { ContainerFolders } from './container-folders.ts';

/** Where a held sandbox finds its task's command: a folder only that container mounts. */
export const TASK_DIR = '/opt/errand/task';
const GO_FILE = 'go.sh';

/**
 * What the held container runs until its task comes: it says it is ready, waits for one
 * line on stdin and then runs the script errand wrote for the task. Anything but `go` (or
 * stdin closing) ends it without running anything.
 */
const READY = 'errand-held-ready\n';
const READY_WITHIN_MS = 60_000;
const LAUNCHER = `printf '${READY.trim()}\\n' && IFS= read -r go && [ "$go" = go ] && exec /bin/sh ${TASK_DIR}/${GO_FILE}`;

/** The part of a sandbox command that is only known when its task comes. */
export interface HeldCommand {
  /** argv, run through the sandbox entrypoint, as SandboxCommand.command. */
  command: string[];
  env: Record<string, string>;
  timeoutMs: number;
  stdin?: string;
  signal?: AbortSignal;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
}

/**
 * A sandbox started before its task, so the task does not wait for podman to start one
 * (about 0.1 s here). Image, mounts, limits and network namespace are fixed when it is
 * started; the command and its environment come with the task. It serves one task only.
 */
export interface HeldSandbox {
  /** False once its container is gone (it died, ran, or was discarded). */
  readonly ready: boolean;
  /** Runs the task's command, as SandboxDriver.run; the container is gone when it settles. */
  run(cmd: HeldCommand): Promise<ContainerResult>;
  /** Removes it without running anything. */
  discard(): Promise<void>;
}

function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The task's script: its environment, then its command through the entrypoint. */
export function goScript(entrypoint: string, cmd: Pick<HeldCommand, 'command' | 'env'>): string {
  checkEnv(cmd.env);
  const exports = Object.entries(cmd.env).map(([k, v]) => `export ${k}=${shellQuote(v)}\n`);
  return `${exports.join('')}exec ${[entrypoint, ...cmd.command].map(shellQuote).join(' ')}\n`;
}

/**
 * Starts `spec` (its command and environment are ignored) with the launcher, and a folder
 * beside its copies of errand's files mounted read-only at TASK_DIR for the task's
 * script; resolves once the launcher waits. `spec.timeoutMs` is podman's own backstop only: it must cover the wait
 * and the task. Fails with the last lines podman wrote when the container ends first.
 */
export async function holdContainer(
  spec: Omit<ContainerSpec, 'command' | 'env' | 'stdin' | 'signal' | 'onStdout' | 'onStderr'>,
  entrypoint: string,
  podmanEnv: NodeJS.ProcessEnv,
  folders: ContainerFolders,
): Promise<HeldSandbox> {
  const control = join(folders.files, ownedName());
  mkdirSync(control, { mode: 0o755 });
  // An image may run as a user other than root: the script must be readable by it.
  chmodSync(control, 0o755);
  const stdin = new PassThrough();
  let out: ((c: Buffer) => void) | undefined;
  let err: ((c: Buffer) => void) | undefined;
  let used = false;
  let waiting: string | undefined = '';
  let isReady: () => void = () => undefined;
  const readySeen = new Promise<void>((resolve) => {
    isReady = resolve;
  });
  const started: StartedContainer = startContainer(
    {
      ...spec,
      command: ['/bin/sh', '-c', LAUNCHER],
      env: {},
      mounts: [...spec.mounts, { source: control, target: TASK_DIR, readOnly: true }],
      stdin,
      // The launcher's line is errand's; what follows is the task's.
      onStdout: (c) => {
        if (waiting === undefined) {
          out?.(c);
          return;
        }
        // Anything before the line (an image's own entrypoint talking) is not the task's.
        const text = waiting + c.toString('latin1');
        const at = text.indexOf(READY);
        if (at < 0) {
          waiting = text.slice(-READY.length);
          return;
        }
        waiting = undefined;
        isReady();
        const rest = text.slice(at + READY.length);
        if (rest) out?.(Buffer.from(rest, 'latin1'));
      },
      onStderr: (c) => err?.(c),
    },
    podmanEnv,
    folders,
  );
  const done = started.result.finally(() => removeTree(control));
  done.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const tooLate = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), READY_WITHIN_MS);
  });
  const ended = await Promise.race([readySeen.then(() => undefined), done, tooLate]);
  clearTimeout(timer);
  if (ended === 'late') {
    stdin.end();
    started.stop();
    await done.catch(() => undefined);
    throw new Error(`the held sandbox was not ready within ${READY_WITHIN_MS / 1000} s`);
  }
  if (ended) {
    throw new Error(
      `the held sandbox ended before it was ready (${ended.outcome}): ${ended.stderrTail || 'no output'}`,
    );
  }
  return {
    get ready() {
      return started.running && !used;
    },
    run: async (cmd) => {
      if (used) throw new Error('a held sandbox serves one task only');
      used = true;
      writeFileSync(join(control, GO_FILE), goScript(entrypoint, cmd), { mode: 0o644 });
      out = cmd.onStdout;
      err = cmd.onStderr;
      started.arm({ timeoutMs: cmd.timeoutMs, signal: cmd.signal });
      stdin.write('go\n');
      stdin.end(cmd.stdin ?? '');
      return await done;
    },
    discard: async () => {
      used = true;
      // Closing stdin ends the launcher; the kill covers a container that does not read it.
      stdin.end();
      started.stop();
      await done.catch(() => undefined);
    },
  };
}
