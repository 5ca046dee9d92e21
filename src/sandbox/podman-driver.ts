import { createHash, randomBytes } from 'node:crypto';

import { sandboxClaudeCli } from './claude-cli.ts';
import {
  type ContainerResult,
  removeOrphans,
  runContainer,
  type SandboxMount,
} from './container.ts';
import {
  type ContainerFile,
  type ContainerFolders,
  containerFolders,
  removeLeftContainerFiles,
} from './container-folders.ts';
import type { SandboxCommand, SandboxDriver, SandboxHold } from './driver.ts';
import { CLAUDE_BIN, ENTRYPOINT, ENTRYPOINT_FILE } from './entrypoint.ts';
import { type HeldSandbox, holdContainer } from './held-container.ts';
import { type BuildResult, ImageCache } from './image-cache.ts';
import { ensurePodmanEnv } from './podman.ts';
import { removeSandboxFolder } from './remove-folder.ts';

/**
 * Sandboxes as podman containers on this host (rootless when errand runs as a user).
 * Everything a container mounts of errand's own (entrypoint, CLI, the files a command
 * brings) is a copy under `sandboxDir`: the mount table inside shows each mount's host
 * path, and the state and cache folders are not the sandbox's to know.
 */
export class PodmanSandbox implements SandboxDriver {
  readonly #stateDir: string;
  readonly #cacheDir: string;
  readonly #sandboxDir: string;
  readonly #instance: string;
  readonly #imageMaxAgeMs: number;
  #env: NodeJS.ProcessEnv | undefined;
  #images: ImageCache | undefined;
  #folders: ContainerFolders | undefined;

  constructor(opts: {
    stateDir: string;
    cacheDir: string;
    sandboxDir: string;
    imageMaxAgeMs: number;
  }) {
    this.#stateDir = opts.stateDir;
    this.#cacheDir = opts.cacheDir;
    this.#sandboxDir = opts.sandboxDir;
    this.#imageMaxAgeMs = opts.imageMaxAgeMs;
    // One installation, one label: two errands with different state folders never remove
    // each other's containers.
    this.#instance = `gw-${createHash('sha256').update(opts.stateDir).digest('hex').slice(0, 12)}`;
  }

  async #ready(): Promise<{
    env: NodeJS.ProcessEnv;
    images: ImageCache;
    folders: ContainerFolders;
  }> {
    this.#env ??= await ensurePodmanEnv(this.#stateDir);
    this.#images ??= new ImageCache({
      podmanEnv: this.#env,
      maxAgeMs: this.#imageMaxAgeMs,
      owner: this.#instance,
    });
    this.#folders ??= containerFolders(this.#stateDir, this.#sandboxDir);
    return { env: this.#env, images: this.#images, folders: this.#folders };
  }

  async prepareImage(contextDir: string): Promise<BuildResult> {
    return await (await this.#ready()).images.ensure(contextDir);
  }

  /** The task's mounts plus, when asked for, the CLI. */
  async #mounts(cmd: { mounts: SandboxMount[]; claudeCodeVersion?: string }) {
    const mounts = [...cmd.mounts];
    if (cmd.claudeCodeVersion) {
      mounts.push({
        source: await sandboxClaudeCli(this.#cacheDir, this.#sandboxDir, cmd.claudeCodeVersion),
        target: CLAUDE_BIN,
        readOnly: true,
      });
    }
    return mounts;
  }

  /** The command's files plus errand's entrypoint. */
  #files(cmd: { files?: ContainerFile[] }): ContainerFile[] {
    return [ENTRYPOINT_FILE, ...(cmd.files ?? [])];
  }

  async run(cmd: SandboxCommand): Promise<ContainerResult> {
    const { env, folders } = await this.#ready();
    const result = await runContainer(
      {
        image: cmd.image,
        name: `errand-${this.#instance}-${cmd.taskId}-${Date.now().toString(36)}`,
        command: [ENTRYPOINT, ...cmd.command],
        mounts: await this.#mounts(cmd),
        files: this.#files(cmd),
        env: cmd.env,
        limits: cmd.limits,
        network: cmd.network,
        labels: { 'errand.instance': this.#instance, 'errand.task': cmd.taskId },
        timeoutMs: cmd.timeoutMs,
        stdin: cmd.stdin,
        signal: cmd.signal,
        onStdout: cmd.onStdout,
        onStderr: cmd.onStderr,
      },
      env,
      folders,
    );
    // An image removed behind errand's back is looked up (and rebuilt) next time.
    if (result.outcome === 'failed_to_start') this.#images?.forget(cmd.image);
    return result;
  }

  async hold(spec: SandboxHold): Promise<HeldSandbox> {
    const { env, folders } = await this.#ready();
    const held = await holdContainer(
      {
        image: spec.image,
        name: `errand-${this.#instance}-held-${Date.now().toString(36)}${randomBytes(3).toString('hex')}`,
        mounts: await this.#mounts(spec),
        files: this.#files(spec),
        limits: spec.limits,
        network: spec.network,
        labels: { 'errand.instance': this.#instance, 'errand.task': 'held' },
        timeoutMs: spec.maxLifetimeMs,
      },
      ENTRYPOINT,
      env,
      folders,
    );
    return {
      get ready() {
        return held.ready;
      },
      discard: () => held.discard(),
      run: async (cmd) => {
        const result = await held.run(cmd);
        if (result.outcome === 'failed_to_start') this.#images?.forget(spec.image);
        return result;
      },
    };
  }

  async removeFolder(path: string): Promise<void> {
    this.#env ??= await ensurePodmanEnv(this.#stateDir);
    await removeSandboxFolder(path, this.#env);
  }

  /** Removes this installation's images unused for twice their maximum age. */
  async pruneImages(): Promise<string[]> {
    return await (await this.#ready()).images.prune(2 * this.#imageMaxAgeMs);
  }

  /** Also deletes the env files and file copies of containers of a crashed errand. */
  async removeOrphans(): Promise<string[]> {
    const { env, folders } = await this.#ready();
    const removed = await removeOrphans(this.#instance, env);
    removeLeftContainerFiles(folders);
    return removed;
  }
}
