import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventually, gatewayFixture } from '../harness/gateway-fixture.ts';

describe('replies', () => {
  it('are retried with backoff after a failed send and recorded sent once', async () => {
    const f = await gatewayFixture();
    try {
      f.channel.failNext = 2;
      await f.channel.send('hello', { thread: 'r' });
      const [sent] = await f.channel.waitForSent(1);
      assert.equal(f.channel.attempts.length, 3);
      await eventually(
        async () => (await f.store.listDeliveries({ states: ['sent'] })).length === 1,
        'sent state',
      );
      const [d] = await f.store.listDeliveries({ taskId: sent!.delivery.taskId });
      assert.equal(d!.state, 'sent');
    } finally {
      await f.close();
    }
  });

  it('stay visible as failed with the last error when every attempt fails', async () => {
    const f = await gatewayFixture();
    try {
      f.channel.failNext = 100;
      await f.channel.send('hello', { thread: 'r' });
      const [d] = await eventually(async () => {
        const failed = await f.store.listDeliveries({ states: ['failed'] });
        return failed.length ? failed : undefined;
      }, 'failed delivery');
      assert.equal(d!.attempts, 3);
      assert.match(d!.lastError ?? '', /simulated delivery failure/);
      assert.equal(f.channel.sent.length, 0);
    } finally {
      await f.close();
    }
  });
});
