/**
 * errand's gateway with the real email channel of repository "app", in a process of its
 * own so bench/backlog.ts can read its resident memory from /proc. The executor answers
 * at once: the bench measures errand's own memory, not an agent's.
 *
 *   node bench/backlog-child.ts DIR     DIR holds errand.yaml; the store is put there
 *
 * Prints {"ev":"started"} once the gateway runs and {"ev":"connected"} once the mailbox is
 * open, one JSON line each; stops on SIGTERM.
 */
import { join } from 'node:path';
import { EmailChannel } from '../src/channels/email/index.ts';
import { loadServerConfig } from '../src/config/index.ts';
import { Gateway } from '../src/gateway/index.ts';
import type { TaskExecutor } from '../src/gateway/ports.ts';
import { openSqliteStore } from '../src/store/index.ts';
import { createLogger } from '../src/util/logger.ts';

const dir = process.argv[2]!;
const loaded = await loadServerConfig({ path: join(dir, 'errand.yaml'), env: {} });
if (loaded.status !== 'ok') throw new Error(`bad config: ${JSON.stringify(loaded)}`);
// Warnings (a failed send, a failed mailbox check) go to stderr: they explain a loss.
const logger = createLogger({ level: 'warn' });

// Holds nothing per task, so whatever memory grows is errand's.
const executor: TaskExecutor = {
  async run(run) {
    return {
      kind: 'success',
      text: `done: ${run.parts[0]?.text.split('\n', 1)[0] ?? ''}`,
      files: [],
      sessionId: run.conversation.sessionId ?? `session-${run.conversation.id}`,
    };
  },
};

const store = openSqliteStore(join(dir, 'state.db'));
const gateway = new Gateway({
  store,
  executor,
  config: loaded.config,
  logger,
  channelFactory: (repoId, repo) => [
    new EmailChannel(repoId, repo.email!, { logger, attachmentsDir: join(dir, 'attachments') }),
  ],
});
await gateway.start();
process.once('SIGTERM', () => {
  void gateway
    .shutdown()
    .then(() => store.close())
    .then(() => process.exit(0));
});
process.stdout.write(`${JSON.stringify({ ev: 'started' })}\n`);
const mailbox = gateway.channelsOf('app')[0]!;
while (mailbox.health().state !== 'connected') await new Promise((r) => setTimeout(r, 20));
process.stdout.write(`${JSON.stringify({ ev: 'connected' })}\n`);
