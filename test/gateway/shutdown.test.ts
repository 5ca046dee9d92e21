import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gatewayFixture } from '../harness/gateway-fixture.ts';

describe('shutting down', () => {
  it('lets tasks finish within the grace period', async () => {
    const f = await gatewayFixture();
    try {
      await f.channel.send('hang briefly', { thread: 'a' });
      await f.executor.waitForRuns(1);
      const id = f.executor.runs[0]!.task.id;
      setTimeout(() => f.executor.release(id), 100);
      await f.gateway.shutdown();
      assert.equal((await f.store.getTask(id))!.state, 'done');
      assert.equal(f.channel.sent[0]!.delivery.kind, 'reply');
    } finally {
      await f.close();
    }
  });

  it('interrupts tasks still running after the grace period and tells their threads', async () => {
    const f = await gatewayFixture();
    try {
      await f.channel.send('hang forever', { thread: 'a' });
      await f.executor.waitForRuns(1);
      const id = f.executor.runs[0]!.task.id;
      await f.gateway.shutdown();
      assert.equal((await f.store.getTask(id))!.state, 'interrupted');
      assert.equal(f.channel.sent[0]!.delivery.kind, 'interrupted');
      assert.match(f.channel.sent[0]!.delivery.text, /shut down while working on this/);
      await assert.rejects(f.channel.send('too late'), /shutting down/);
    } finally {
      await f.close();
    }
  });
});
