import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HistoryEntry, TaskExecutor, TaskOutcome, TaskRun } from '../../src/gateway/ports.ts';
import { eventually, gatewayFixture } from '../harness/gateway-fixture.ts';

/**
 * Reads the history a fresh session's prompt is built from (an agent whose session is gone)
 * in every run; the first run waits until released, so messages can queue behind it.
 */
class HistoryReadingExecutor implements TaskExecutor {
  readonly histories: HistoryEntry[][] = [];
  readonly #gate = Promise.withResolvers<void>();

  release(): void {
    this.#gate.resolve();
  }

  async run(run: TaskRun): Promise<TaskOutcome> {
    if (this.histories.length === 0) await this.#gate.promise;
    this.histories.push((await run.history?.()) ?? []);
    return {
      kind: 'success',
      text: `answer ${this.histories.length}`,
      files: [],
      sessionId: undefined,
    };
  }
}

describe("the history a fresh session's prompt carries", () => {
  it('holds the earlier turns, not a message still waiting for the next task', async () => {
    const executor = new HistoryReadingExecutor();
    const f = await gatewayFixture({ gateway: { executor } });
    try {
      await f.channel.send('first', { thread: 't', id: 'm1' });
      await eventually(
        async () => (await f.store.listTasks({ states: ['running'] })).length === 1,
        'the first task running',
      );
      await f.channel.send('second', { thread: 't', id: 'm2' });
      await eventually(
        async () => (await f.store.listTasks({ states: ['queued'] })).length === 1,
        'the second message queued behind it',
      );
      executor.release();
      await f.channel.waitForSent(2);
      assert.deepEqual(executor.histories, [
        [],
        [
          { role: 'person', sender: 'alice', text: 'first' },
          { role: 'agent', text: 'answer 1' },
        ],
      ]);
    } finally {
      executor.release();
      await f.close();
    }
  });
});
