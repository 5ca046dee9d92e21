/**
 * A gateway with the real Slack channel (Bolt in Socket Mode) connected to the Slack
 * emulator, on a real SQLite store, with the executor the test gives.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SlackChannel, type SlackChannelOptions } from '../../src/channels/slack/index.ts';
import { Gateway } from '../../src/gateway/index.ts';
import type { TaskExecutor } from '../../src/gateway/ports.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import type { Store } from '../../src/store/types.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { configFrom } from './gateway-fixture.ts';
import { APP_TOKEN, BOT_TOKEN, SlackEmulator } from './slack-emulator.ts';

export interface SlackFixture {
  dir: string;
  slack: SlackEmulator;
  store: Store;
  gateway: Gateway;
  channel: SlackChannel;
  stopGateway(): Promise<void>;
  close(): Promise<void>;
}

export async function slackFixture(o: {
  executor: TaskExecutor;
  /** YAML lines under `repos.app.slack.authorized` (indent 8). */
  authorized?: string;
  /** Extra YAML lines under `repos.app.slack` (indent 6). */
  slackExtra?: string;
  slack?: SlackEmulator;
  dir?: string;
  repoExtra?: string;
  /** Channel options besides the emulator's address and file host (e.g. file limits). */
  channelOptions?: Partial<SlackChannelOptions>;
}): Promise<SlackFixture> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'errand-slack-'));
  const slack = o.slack ?? (await SlackEmulator.start());
  const config = await configFrom(
    `execution:
  shutdown_grace_seconds: 1
repos:
  app:
    git_url: /srv/app.git
${o.repoExtra ?? ''}    slack:
      app_token: ${APP_TOKEN}
      bot_token: ${BOT_TOKEN}
      authorized:
${o.authorized ?? '        workspace_members: true\n'}${o.slackExtra ?? ''}`,
    dir,
  );
  const store = openSqliteStore(join(dir, 'state.db'));
  let channel: SlackChannel | undefined;
  const gateway = new Gateway({
    store,
    executor: o.executor,
    config,
    logger: silentLogger(),
    channelFactory: (repoId, repo) => {
      channel = new SlackChannel(repoId, repo.slack!, {
        logger: silentLogger(),
        attachmentsDir: join(dir, 'attachments'),
        apiUrl: slack.apiUrl,
        fileHosts: [`127.0.0.1:${slack.port}`],
        progressIntervalMs: 1000,
        ...o.channelOptions,
      });
      return [channel];
    },
    deliveryRetry: { baseDelayMs: 50, maxAttempts: 5 },
  });
  await gateway.start();
  await slack.waitForConnection();
  let stopped = false;
  const stopGateway = async () => {
    if (stopped) return;
    stopped = true;
    await gateway.shutdown();
    await store.close();
  };
  return {
    dir,
    slack,
    store,
    gateway,
    channel: channel!,
    stopGateway,
    async close() {
      await stopGateway();
      if (!o.slack) await slack.close();
      if (!o.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
