import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadServerConfig, type ServerConfig } from '../../src/config/index.ts';
import { Gateway, type GatewayOptions } from '../../src/gateway/index.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import type { Store } from '../../src/store/types.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { MemoryChannel } from './memory-channel.ts';
import { ScriptedExecutor } from './scripted-executor.ts';

/** Loads a config from YAML text through the real loader, in a fresh temp folder. */
export async function configFrom(
  yaml: string,
  dir = mkdtempSync(join(tmpdir(), 'errand-cfg-')),
): Promise<ServerConfig> {
  const path = join(dir, 'errand.yaml');
  writeFileSync(path, yaml);
  const result = await loadServerConfig({ path, env: {} });
  if (result.status !== 'ok') throw new Error(`test config invalid: ${JSON.stringify(result)}`);
  return result.config;
}

export function repoYaml(id: string, extra = ''): string {
  return `  ${id}:\n    git_url: /srv/${id}.git\n${extra}`;
}

export interface Fixture {
  dir: string;
  store: Store;
  executor: ScriptedExecutor;
  gateway: Gateway;
  /** The web channel of each repository, by repository id. */
  channels: Map<string, MemoryChannel>;
  channel: MemoryChannel;
  close(): Promise<void>;
}

/**
 * A gateway on a real SQLite store in a temp folder, with in-memory channels (one web
 * channel per repository, authorizing `alice`) and a scripted executor.
 */
export async function gatewayFixture(
  opts: {
    maxConcurrent?: number;
    repos?: string[];
    yaml?: string;
    gateway?: Partial<GatewayOptions>;
  } = {},
): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'errand-gw-'));
  const repos = opts.repos ?? ['app'];
  const yaml =
    opts.yaml ??
    `execution:\n  max_concurrent: ${opts.maxConcurrent ?? 4}\n  shutdown_grace_seconds: 1\nrepos:\n${repos.map((r) => repoYaml(r)).join('')}`;
  const config = await configFrom(yaml, dir);
  const store = openSqliteStore(join(dir, 'state.db'));
  const executor = new ScriptedExecutor();
  const channels = new Map<string, MemoryChannel>();
  const gateway = new Gateway({
    store,
    executor,
    config,
    logger: silentLogger(),
    channelFactory: (repoId) => {
      const ch = new MemoryChannel(repoId);
      channels.set(repoId, ch);
      return [ch];
    },
    deliveryRetry: { baseDelayMs: 10, maxAttempts: 3 },
    ...opts.gateway,
  });
  await gateway.start();
  return {
    dir,
    store,
    executor,
    gateway,
    channels,
    get channel() {
      return channels.get(repos[0]!)!;
    },
    async close() {
      executor.finishAll();
      await gateway.shutdown();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns a truthy value. */
export async function eventually<T>(
  check: () => Promise<T> | T,
  what: string,
  timeoutMs = 10_000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
