import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ErrandError } from '../util/errors.ts';
import { runPodman } from './podman.ts';

/** Images errand builds are named by content: `localhost/errand-sandbox:<hash16>`. */
export const IMAGE_REPO = 'localhost/errand-sandbox';
const HASH_LABEL = 'errand.content-hash';
/** Which installation built an image, so pruning never touches another's. */
const OWNER_LABEL = 'errand.owner';

export type BuildResult =
  | { ok: true; image: string; hash: string; built: boolean; log: string }
  | { ok: false; hash: string; log: string; reason: string };

/** The Containerfile of a build context: `Containerfile`, else `Dockerfile`. */
export function containerfileOf(contextDir: string): string | undefined {
  for (const name of ['Containerfile', 'Dockerfile']) {
    if (existsSync(join(contextDir, name))) return name;
  }
  return undefined;
}

/**
 * A hash of the build context: every file's relative path, mode and content (symlinks by
 * their target), in a stable order. Same context, same image; any change, a new build.
 */
export function contextHash(contextDir: string): string {
  const h = createHash('sha256');
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const st = lstatSync(path);
      const rel = relative(contextDir, path);
      if (st.isDirectory()) {
        h.update(`d\0${rel}\0`);
        walk(path);
      } else if (st.isSymbolicLink()) {
        h.update(`l\0${rel}\0`);
      } else if (st.isFile()) {
        h.update(`f\0${rel}\0${st.mode & 0o777}\0${st.size}\0`);
        h.update(readFileSync(path));
      }
    }
  };
  walk(contextDir);
  return h.digest('hex');
}

/**
 * Builds images from a context folder, cached by content hash. Builds of the same hash
 * are serialized, so parallel tasks wait for one build instead of starting their own.
 * An image older than `maxAgeMs` is rebuilt (base images and packages move on).
 */
export class ImageCache {
  readonly #env: NodeJS.ProcessEnv;
  readonly #maxAgeMs: number;
  #inflight = new Map<string, Promise<BuildResult>>();
  /** How many podman builds ran: for tests and the dashboard. */
  builds = 0;

  readonly #owner: string | undefined;
  #created = new Map<string, number>();

  constructor(opts: { podmanEnv: NodeJS.ProcessEnv; maxAgeMs: number; owner?: string }) {
    this.#env = opts.podmanEnv;
    this.#maxAgeMs = opts.maxAgeMs;
    this.#owner = opts.owner;
  }

  /** Returns a ready image for the context, building it when needed. */
  async ensure(contextDir: string): Promise<BuildResult> {
    const file = containerfileOf(contextDir);
    const hash = contextHash(contextDir);
    if (!file) {
      return {
        ok: false,
        hash,
        log: '',
        reason: 'no Containerfile or Dockerfile in .errand/container/',
      };
    }
    const running = this.#inflight.get(hash);
    if (running) return await running;
    const p = this.#ensure(contextDir, file, hash).finally(() => this.#inflight.delete(hash));
    this.#inflight.set(hash, p);
    return await p;
  }

  async #ensure(contextDir: string, file: string, hash: string): Promise<BuildResult> {
    const image = `${IMAGE_REPO}:${hash.slice(0, 16)}`;
    // Known images skip podman's own lookup (tens of milliseconds on every task).
    const created = this.#created.get(image) ?? (await this.#createdAt(image));
    if (created !== undefined && Date.now() - created < this.#maxAgeMs) {
      this.#created.set(image, created);
      return { ok: true, image, hash, built: false, log: '' };
    }
    this.builds++;
    const r = await runPodman(
      [
        'build',
        '--file',
        join(contextDir, file),
        '--tag',
        image,
        '--label',
        `${HASH_LABEL}=${hash}`,
        ...(this.#owner ? ['--label', `${OWNER_LABEL}=${this.#owner}`] : []),
        '--pull=never',
        '--layers=true',
        contextDir,
      ],
      { env: this.#env, timeoutMs: 30 * 60_000 },
    );
    const log = `${r.stdout}${r.stderr}`;
    if (r.code !== 0) {
      return {
        ok: false,
        hash,
        log,
        reason: `podman build failed (exit ${r.code}): ${lastLines(r.stderr || r.stdout, 5)}`,
      };
    }
    this.#created.set(image, Date.now());
    return { ok: true, image, hash, built: true, log };
  }

  async #createdAt(image: string): Promise<number | undefined> {
    const r = await runPodman(['image', 'inspect', '--format', '{{.Created.Unix}}', image], {
      env: this.#env,
      timeoutMs: 30_000,
    });
    if (r.code !== 0) return undefined;
    const s = Number(r.stdout.trim());
    return Number.isFinite(s) ? s * 1000 : undefined;
  }

  /** Forgets what is known of an image, e.g. after a container could not find it. */
  forget(image: string): void {
    this.#created.delete(image);
  }

  /**
   * Removes this installation's images built more than `olderThanMs` ago, and returns
   * their names. An image a container still uses is left alone (podman refuses to remove
   * it). A listing podman refuses is a `sandbox_setup` error.
   */
  async prune(olderThanMs: number): Promise<string[]> {
    if (!this.#owner) return [];
    const r = await runPodman(
      [
        'images',
        '--filter',
        `label=${OWNER_LABEL}=${this.#owner}`,
        '--filter',
        `until=${Math.floor(olderThanMs / 1000)}s`,
        '--format',
        '{{.ID}} {{.Repository}}:{{.Tag}}',
      ],
      { env: this.#env, timeoutMs: 60_000 },
    );
    if (r.code !== 0) {
      throw new ErrandError(
        'sandbox_setup',
        `podman could not list the sandbox images (exit ${r.code}): ${lastLines(r.stderr, 3)}`,
      );
    }
    const removed: string[] = [];
    const seen = new Set<string>();
    for (const line of r.stdout.split('\n')) {
      const [id, name] = line.trim().split(' ') as [string, string | undefined];
      if (!id || seen.has(id)) continue;
      seen.add(id);
      // By id, not name: a build of the same context meanwhile gives the name to a new
      // image, which must stay.
      const rm = await runPodman(['rmi', id], { env: this.#env, timeoutMs: 60_000 });
      if (rm.code === 0) {
        const shown = name && !name.endsWith(':<none>') ? name : id;
        removed.push(shown);
        if (name) this.forget(name);
      }
    }
    return removed;
  }
}

function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join(' | ');
}
