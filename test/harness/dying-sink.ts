import type { MessageSink } from '../../src/gateway/ports.ts';

/**
 * A sink that kills its own process with SIGKILL right after the first message is stored:
 * the crash window between storing a message and telling its source, for crash tests.
 */
export function dyingAfterStore(sink: MessageSink): MessageSink {
  return {
    async receive(msg) {
      const r = await sink.receive(msg);
      process.stdout.write(`${JSON.stringify({ ev: 'stored', id: r.messageId })}\n`);
      process.kill(process.pid, 'SIGKILL');
      return r;
    },
    hasConversation: (key) => sink.hasConversation(key),
  };
}
