import type { ContainerResult, SandboxLimits, SandboxMount, SandboxNetwork } from './container.ts';
import type { ContainerFile } from './container-folders.ts';
import type { HeldSandbox } from './held-container.ts';
import type { BuildResult } from './image-cache.ts';

/** One command of one task, in terms any sandbox engine can honour. */
export interface SandboxCommand {
  /** Task id: names the sandbox so it can be found and removed. */
  taskId: string;
  image: string;
  command: string[];
  mounts: SandboxMount[];
  /** errand's files (e.g. its CA certificate), provided read-only; none when undefined. */
  files?: ContainerFile[];
  env: Record<string, string>;
  limits: SandboxLimits;
  network: SandboxNetwork;
  timeoutMs: number;
  /** Claude Code version to provide at /opt/errand/bin/claude; none when undefined. */
  claudeCodeVersion?: string;
  stdin?: string;
  signal?: AbortSignal;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
}

/** A sandbox started ahead of its task: all of SandboxCommand the task does not decide. */
export interface SandboxHold {
  image: string;
  mounts: SandboxMount[];
  files?: ContainerFile[];
  limits: SandboxLimits;
  network: SandboxNetwork;
  claudeCodeVersion?: string;
  /** The wait for a task plus the task's own time limit: the engine's backstop. */
  maxLifetimeMs: number;
}

/**
 * The sandbox engine behind the gateway. Podman on this host is the first implementation;
 * a Kubernetes one (a pod per task) can follow without the gateway knowing.
 */
export interface SandboxDriver {
  /** Builds, or reuses, the image of a build context (the trusted `.errand/container/`). */
  prepareImage(contextDir: string): Promise<BuildResult>;
  /** Runs one command in a fresh sandbox that is gone when this resolves. */
  run(cmd: SandboxCommand): Promise<ContainerResult>;
  /** Starts a sandbox that waits for its task's command (see HeldSandbox). */
  hold(spec: SandboxHold): Promise<HeldSandbox>;
  /**
   * Deletes a folder its sandboxes mounted (a conversation's), with everything in it,
   * whatever the agent did to it: folders made unreadable or unwritable, files given to
   * another uid of the sandbox, links (removed, never followed). Nothing there: nothing to
   * do. No sandbox may be running on it. Fails with TreeNotRemovedError (`code`
   * `tree_not_removed`) when anything is left; what could go is gone.
   */
  removeFolder(path: string): Promise<void>;
  /** Removes sandboxes an earlier process of this installation left behind. */
  removeOrphans(): Promise<string[]>;
  /** Removes this installation's old images; images in use stay. */
  pruneImages(): Promise<string[]>;
}
