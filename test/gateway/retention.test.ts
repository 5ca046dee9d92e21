import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, mock } from 'node:test';
import { gatewayFixture } from '../harness/gateway-fixture.ts';

/** A retention sweep as it runs 31 days from now, past the default 30 days. */
async function sweepMonthLater(f: Awaited<ReturnType<typeof gatewayFixture>>): Promise<number> {
  mock.timers.enable({ apis: ['Date'], now: Date.now() + 31 * 86_400_000 });
  try {
    return await f.gateway.sweepRetention();
  } finally {
    mock.timers.reset();
  }
}

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
      assert.equal(await sweepMonthLater(f), 1);
      assert.deepEqual(f.executor.removed, [old]);
      assert.equal(await f.store.getConversation(old!), undefined);
      assert.ok(await f.store.getConversation(busy!));
      assert.deepEqual(await f.store.listMessages({ conversationId: old! }), []);
      assert.equal(existsSync(saved), false, 'the files channels saved for it are gone');
    } finally {
      await f.close();
    }
  });

  it('goes on past a conversation whose folders cannot be removed (files a rootless sandbox gave to a uid of its own), keeping it for the next sweep', async () => {
    const f = await gatewayFixture();
    try {
      // The older one is listed first: a sweep that stopped there would remove nothing.
      await f.channel.send('undeletable: chown -R 1000 /workspace/locked; chmod 000 it', {
        thread: 'locked',
      });
      await f.channel.waitForSent(1);
      await f.channel.send('an ordinary one', { thread: 'ordinary' });
      await f.channel.waitForSent(2);
      const [locked, ordinary] = f.executor.runs.map((r) => r.conversation.id);
      assert.equal(await sweepMonthLater(f), 1);
      assert.deepEqual(f.executor.removed, [ordinary]);
      assert.equal(await f.store.getConversation(ordinary!), undefined);
      assert.ok(await f.store.getConversation(locked!), 'kept, to be tried again');
    } finally {
      await f.close();
    }
  });
});
