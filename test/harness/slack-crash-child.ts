/**
 * errand's Slack channel in its own process, killed with SIGKILL at a chosen point:
 * - `after-store` (default): right after the first message is stored, before Slack got
 *   its acknowledgement and before any reply;
 * - `after-reply-posted`: once a reply is in its thread, before it is marked sent.
 *
 * argv[2]: folder holding errand.yaml; argv[3]: the emulator's Web API URL; argv[4]: mode.
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
const afterReply = process.argv[4] === 'after-reply-posted';
const loaded = await loadServerConfig({ path: join(dir, 'errand.yaml'), env: {} });
if (loaded.status !== 'ok') throw new Error(`bad config: ${JSON.stringify(loaded)}`);

class DyingAfterStore extends SlackChannel {
  override async start(sink: MessageSink): Promise<void> {
    await super.start(dyingAfterStore(sink));
  }
}

const store = openSqliteStore(join(dir, 'state.db'));
if (afterReply) {
  const mark = store.markDelivery.bind(store);
  store.markDelivery = async (id, patch) => {
    if (patch.state === 'sent') process.kill(process.pid, 'SIGKILL');
    return await mark(id, patch);
  };
}

const gateway = new Gateway({
  store,
  executor: new ScriptedExecutor({ hang: !afterReply }),
  config: loaded.config,
  logger: silentLogger(),
  channelFactory: (repoId, repo) => [
    new (afterReply ? SlackChannel : DyingAfterStore)(repoId, repo.slack!, {
      logger: silentLogger(),
      attachmentsDir: join(dir, 'attachments'),
      apiUrl,
    }),
  ],
});
await gateway.start();
process.stdout.write(`${JSON.stringify({ ev: 'started' })}\n`);
