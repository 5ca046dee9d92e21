import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { gatewayFixture } from '../harness/gateway-fixture.ts';

describe('retention', () => {
  it('removes conversations idle past retention_days with their workspaces, and keeps busy ones', async () => {
    const f = await gatewayFixture();
    try {
      await f.channel.send('old and finished', { thread: 'old' });
      await f.channel.waitForSent(1);
      await f.channel.send('hang: still running', { thread: 'busy' });
      await f.executor.waitForRuns(2);
      const [old, busy] = f.executor.runs.map((r) => r.conversation.id);
      assert.equal(await f.gateway.sweepRetention(), 0, 'nothing is old yet');
      mock.timers.enable({ apis: ['Date'], now: Date.now() + 31 * 86_400_000 });
      try {
        assert.equal(await f.gateway.sweepRetention(), 1);
      } finally {
        mock.timers.reset();
      }
      assert.deepEqual(f.executor.removed, [old]);
      assert.equal(await f.store.getConversation(old!), undefined);
      assert.ok(await f.store.getConversation(busy!));
      assert.deepEqual(await f.store.listMessages({ conversationId: old! }), []);
    } finally {
      await f.close();
    }
  });
});
