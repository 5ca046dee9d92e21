import { basename, dirname, join } from 'node:path';
import type { ServerConfig } from '../../src/config/index.ts';
import { defaultCacheDir } from '../../src/config/index.ts';
import { type AgentRunner, SandboxExecutor } from '../../src/execution/index.ts';
import { Gateway } from '../../src/gateway/index.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import type { Store } from '../../src/store/types.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { MemoryChannel } from './memory-channel.ts';

export interface SandboxGateway {
  executor: SandboxExecutor;
  store: Store;
  gateway: Gateway;
  /** The web channel of each repository, by repository id. */
  channels: Map<string, MemoryChannel>;
  /** Shuts the gateway down (its executor with it) and closes the store. */
  close(): Promise<void>;
}

/**
 * Sends `script` to the repository's channel in `thread` and waits for the reply; `held`
 * tells whether the task ran in a sandbox held for it. Returns once the sandboxes held
 * after it are started too.
 */
export async function askSandboxGateway(
  g: SandboxGateway,
  repo: string,
  script: string,
  thread: string,
) {
  const channel = g.channels.get(repo)!;
  const n = channel.sent.length;
  await channel.send(script, { thread, id: `${thread}-${n}-${Date.now()}` });
  const d = (await channel.waitForSent(n + 1, 120_000))[n]!.delivery;
  const tasks = await g.store.listTasks({ conversationId: d.conversationId! });
  const held = (await g.store.listEvents(tasks.at(-1)!.id)).some(
    (e) => e.kind === 'sandbox' && (e.data as { step?: string }).step === 'held',
  );
  await g.executor.settle();
  return { ...d, held };
}

/** The sandbox folder startSandboxGateway uses when given none: beside the state folder. */
export function sandboxDirBeside(stateDir: string): string {
  return join(dirname(stateDir), `sandboxes-${basename(stateDir)}`);
}

/**
 * A started gateway whose tasks run for real: the host's SandboxExecutor (podman, the
 * proxy, the mirrors under `stateDir`, the conversations under `sandboxDir`, default
 * sandboxDirBeside(stateDir)) with `agent` inside, and a MemoryChannel per repository to
 * send messages and read replies.
 */
export async function startSandboxGateway(o: {
  config: ServerConfig;
  stateDir: string;
  sandboxDir?: string;
  agent: AgentRunner;
  /** Where the Claude Code CLI is cached; default: errand's own cache folder. */
  cacheDir?: string;
}): Promise<SandboxGateway> {
  const executor = await SandboxExecutor.onHost({
    stateDir: o.stateDir,
    sandboxDir: o.sandboxDir ?? sandboxDirBeside(o.stateDir),
    cacheDir: o.cacheDir ?? defaultCacheDir(),
    imageMaxAgeMs: 3_600_000,
    config: () => o.config,
    agent: o.agent,
    logger: silentLogger(),
  });
  const store = openSqliteStore(join(o.stateDir, 'errand.db'));
  const channels = new Map<string, MemoryChannel>();
  const gateway = new Gateway({
    store,
    executor,
    config: o.config,
    logger: silentLogger(),
    channelFactory: (repoId) => {
      const c = new MemoryChannel(repoId);
      channels.set(repoId, c);
      return [c];
    },
  });
  await gateway.start();
  return {
    executor,
    store,
    gateway,
    channels,
    close: async () => {
      await gateway.shutdown();
      await store.close();
    },
  };
}
