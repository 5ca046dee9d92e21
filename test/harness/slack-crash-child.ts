/**
 * errand's Slack intake in its own process, killed with SIGKILL right after the first
 * message is stored: before Slack got its acknowledgement and before any reply.
 *
 * argv[2]: folder holding errand.yaml; argv[3]: the emulator's Web API URL.
 */
import { join } from 'node:path';
import { SlackChannel } from '../../src/channels/slack/index.ts';
import { loadServerConfig } from '../../src/config/index.ts';
import { Gateway } from '../../src/gateway/index.ts';
import type { MessageSink } from '../../src/gateway/ports.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { dyingAfterStore } from './dying-sink.ts';
import { ScriptedExecutor } from './scripted-executor.ts';

const [dir, apiUrl] = [process.argv[2]!, process.argv[3]!];
const loaded = await loadServerConfig({ path: join(dir, 'errand.yaml'), env: {} });
if (loaded.status !== 'ok') throw new Error(`bad config: ${JSON.stringify(loaded)}`);

class DyingAfterStore extends SlackChannel {
  override async start(sink: MessageSink): Promise<void> {
    await super.start(dyingAfterStore(sink));
  }
}

const gateway = new Gateway({
  store: openSqliteStore(join(dir, 'state.db')),
  executor: new ScriptedExecutor({ hang: true }),
  config: loaded.config,
  logger: silentLogger(),
  channelFactory: (repoId, repo) => [
    new DyingAfterStore(repoId, repo.slack!, {
      logger: silentLogger(),
      attachmentsDir: join(dir, 'attachments'),
      apiUrl,
    }),
  ],
});
await gateway.start();
process.stdout.write(`${JSON.stringify({ ev: 'started' })}\n`);
