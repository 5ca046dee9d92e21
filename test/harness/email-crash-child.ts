/**
 * errand's email intake in its own process, killed with SIGKILL right after the first
 * message is stored and before the IMAP server is told it was handled: the crash window
 * the at-least-once design must survive.
 *
 * argv[2]: folder holding errand.yaml; the store is put there.
 */
import { join } from 'node:path';
import { EmailChannel } from '../../src/channels/email/index.ts';
import { loadServerConfig } from '../../src/config/index.ts';
import { Gateway } from '../../src/gateway/index.ts';
import type { MessageSink } from '../../src/gateway/ports.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { dyingAfterStore } from './dying-sink.ts';
import { ScriptedExecutor } from './scripted-executor.ts';

const dir = process.argv[2]!;
const loaded = await loadServerConfig({ path: join(dir, 'errand.yaml'), env: {} });
if (loaded.status !== 'ok') throw new Error(`bad config: ${JSON.stringify(loaded)}`);

class DyingAfterStore extends EmailChannel {
  override async start(sink: MessageSink): Promise<void> {
    await super.start(dyingAfterStore(sink));
  }
}

const gateway = new Gateway({
  store: openSqliteStore(join(dir, 'state.db')),
  // Tasks must not start before the kill decides what was stored; "hang" keeps them waiting.
  executor: new ScriptedExecutor({ hang: true }),
  config: loaded.config,
  logger: silentLogger(),
  channelFactory: (repoId, repo) => [
    new DyingAfterStore(repoId, repo.email!, {
      logger: silentLogger(),
      attachmentsDir: join(dir, 'attachments'),
    }),
  ],
});
await gateway.start();
process.stdout.write(`${JSON.stringify({ ev: 'started' })}\n`);
