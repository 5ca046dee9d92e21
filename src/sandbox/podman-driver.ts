import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';

import { ensureClaudeCli } from './claude-cli.ts';
import {
  type ContainerResult,
  removeOrphans,
  runContainer,
  type SandboxMount,
} from './container.ts';
import type { SandboxCommand, SandboxDriver, SandboxHold } from './driver.ts';
import { CLAUDE_BIN, ENTRYPOINT, writeEntrypoint } from './entrypoint.ts';
import { type HeldSandbox, holdContainer } from './held-container.ts';
import { type BuildResult, ImageCache } from './image-cache.ts';
import { ensurePodmanEnv } from './podman.ts';

/** Sandboxes as podman containers on this host (rootless when errand runs as a user). */
export class PodmanSandbox implements SandboxDriver {
  readonly #stateDir: string;
  readonly #cacheDir: string;
  readonly #instance: string;
  readonly #imageMaxAgeMs: number;
  #env: NodeJS.ProcessEnv | undefined;
  #images: ImageCache | undefined;
  #entrypoint: string | undefined;

  constructor(opts: { stateDir: string; cacheDir: string; imageMaxAgeMs: number }) {
    this.#stateDir = opts.stateDir;
    this.#cacheDir = opts.cacheDir;
    this.#imageMaxAgeMs = opts.imageMaxAgeMs;
    // One installation, one label: two errands with different state folders never remove
    // each other's containers.
    this.#instance = `gw-${createHash('sha256').update(opts.stateDir).digest('hex').slice(0, 12)}`;
  }

  async #ready(): Promise<{ env: NodeJS.ProcessEnv; images: ImageCache; entrypoint: string }> {
    this.#env ??= await ensurePodmanEnv(this.#stateDir);
    this.#images ??= new ImageCache({
      podmanEnv: this.#env,
      maxAgeMs: this.#imageMaxAgeMs,
      owner: this.#instance,
    });
    this.#entrypoint ??= writeEntrypoint(this.#stateDir);
    return { env: this.#env, images: this.#images, entrypoint: this.#entrypoint };
  }

  async prepareImage(contextDir: string): Promise<BuildResult> {
    return await (await this.#ready()).images.ensure(contextDir);
  }

  /** The task's mounts plus errand's own: the entrypoint and, when asked for, the CLI. */
  async #mounts(cmd: { mounts: SandboxMount[]; claudeCodeVersion?: string }, entrypoint: string) {
    const mounts = [...cmd.mounts, { source: entrypoint, target: ENTRYPOINT, readOnly: true }];
    if (cmd.claudeCodeVersion) {
      mounts.push({
        source: await ensureClaudeCli(this.#cacheDir, cmd.claudeCodeVersion),
        target: CLAUDE_BIN,
        readOnly: true,
      });
    }
    return mounts;
  }

  async run(cmd: SandboxCommand): Promise<ContainerResult> {
    const { env, entrypoint } = await this.#ready();
    const mounts = await this.#mounts(cmd, entrypoint);
    const result = await runContainer(
      {
        image: cmd.image,
        name: `errand-${this.#instance}-${cmd.taskId}-${Date.now().toString(36)}`,
        command: [ENTRYPOINT, ...cmd.command],
        mounts,
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
    );
    // An image removed behind errand's back is looked up (and rebuilt) next time.
    if (result.outcome === 'failed_to_start') this.#images?.forget(cmd.image);
    return result;
  }

  async hold(spec: SandboxHold): Promise<HeldSandbox> {
    const { env, entrypoint } = await this.#ready();
    const held = await holdContainer(
      {
        image: spec.image,
        name: `errand-${this.#instance}-held-${Date.now().toString(36)}${randomBytes(3).toString('hex')}`,
        mounts: await this.#mounts(spec, entrypoint),
        limits: spec.limits,
        network: spec.network,
        labels: { 'errand.instance': this.#instance, 'errand.task': 'held' },
        timeoutMs: spec.maxLifetimeMs,
      },
      ENTRYPOINT,
      join(this.#stateDir, 'sandbox', 'held'),
      env,
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

  /** Removes this installation's images unused for twice their maximum age. */
  async pruneImages(): Promise<string[]> {
    return await (await this.#ready()).images.prune(2 * this.#imageMaxAgeMs);
  }

  async removeOrphans(): Promise<string[]> {
    return await removeOrphans(this.#instance, (await this.#ready()).env);
  }
}
