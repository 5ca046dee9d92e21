import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, mock } from 'node:test';
import { gatewayFixture } from '../harness/gateway-fixture.ts';

describe('retention', () => {
  it('removes conversations idle past retention_days with their workspaces and attachments, and keeps busy ones', async () => {
    const f = await gatewayFixture();
    try {
      const saved = join(f.dir, 'attachment.txt');
      writeFileSync(saved, 'from a mail');
      await f.channel.send('old and finished', {
        thread: 'old',
        attachments: [{ name: 'attachment.txt', path: saved, size: 11 }],
      });
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
      assert.equal(existsSync(saved), false, 'the files channels saved for it are gone');
    } finally {
      await f.close();
    }
  });
});
