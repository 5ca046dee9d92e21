/**
 * A running dashboard on loopback: the real gateway with the real web channel, a real
 * SQLite store and a scripted executor (prompts with "hang" wait until stopped).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebChannel } from '../../src/channels/web/index.ts';
import {
  createDashboard,
  type Dashboard,
  type DashboardLimits,
  sha256Hex,
} from '../../src/dashboard/index.ts';
import { Gateway } from '../../src/gateway/index.ts';
import type { TaskExecutor } from '../../src/gateway/ports.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import type { Store } from '../../src/store/types.ts';
import { type Logger, silentLogger } from '../../src/util/logger.ts';
import { configFrom } from './gateway-fixture.ts';
import { ScriptedExecutor } from './scripted-executor.ts';

export interface DashboardFixture {
  url: string;
  gateway: Gateway;
  store: Store;
  executor: TaskExecutor;
  controlToken: string;
  dashboard: Dashboard;
  close(): Promise<void>;
}

export async function dashboardFixture(
  o: {
    /** YAML for the whole config (the fixture binds port 0, whatever it says). */
    yaml?: string;
    tokens?: Record<string, string>;
    executor?: TaskExecutor;
    /** Address to bind; default 127.0.0.1. */
    bind?: string;
    /** The folder reply files are served from; default: one in the fixture's folder. */
    deliveriesDir?: string;
    /** Shorter bounds than errand's own, so a test need not wait 30 s. */
    limits?: Partial<DashboardLimits>;
    /** Where the dashboard logs; default: nowhere. */
    logger?: Logger;
  } = {},
): Promise<DashboardFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'errand-dash-'));
  const config = await configFrom(
    o.yaml ??
      `dashboard:\n  host: ${o.bind ?? '127.0.0.1'}\nrepos:\n  app:\n    git_url: /srv/app.git\n`,
    dir,
  );
  const store = openSqliteStore(join(dir, 'state.db'));
  const executor = o.executor ?? new ScriptedExecutor({ hang: true });
  const gateway = new Gateway({
    store,
    executor,
    config,
    logger: silentLogger(),
    channelFactory: (repoId, repo) => (repo.web.enabled ? [new WebChannel(repoId, repo.web)] : []),
  });
  await gateway.start();
  const controlToken = 'control-token-for-tests';
  const dashboard = createDashboard({
    gateway,
    logger: o.logger ?? silentLogger(),
    controlToken,
    tokenHashes: new Map(Object.entries(o.tokens ?? {}).map(([u, t]) => [u, sha256Hex(t)])),
    version: 'test',
    deliveriesDir: o.deliveriesDir ?? join(dir, 'deliveries'),
    limits: o.limits,
  });
  await new Promise<void>((resolve) =>
    dashboard.server.listen(0, o.bind ?? '127.0.0.1', () => resolve()),
  );
  const port = (dashboard.server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    gateway,
    store,
    executor,
    controlToken,
    dashboard,
    async close() {
      if (executor instanceof ScriptedExecutor) executor.finishAll();
      dashboard.close();
      dashboard.server.closeAllConnections();
      await new Promise<void>((resolve) => dashboard.server.close(() => resolve()));
      await gateway.shutdown();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
