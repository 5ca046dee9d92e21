import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, mock } from 'node:test';
import { eventually, gatewayFixture } from '../harness/gateway-fixture.ts';

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
      const [shown] = f.gateway.undeletedConversations();
      assert.deepEqual(
        { ...shown, since: undefined },
        {
          conversationId: locked,
          repoId: 'app',
          since: undefined,
          attempts: 1,
          reason: 'removing it failed (EACCES)',
        },
        'shown for health, without the path the error named',
      );
      assert.equal(await sweepMonthLater(f), 0);
      assert.equal(f.gateway.undeletedConversations()[0]?.attempts, 2, 'tried again');
    } finally {
      await f.close();
    }
  });

  it('goes on past a conversation the store fails to delete, keeping it for the next sweep', async () => {
    const f = await gatewayFixture();
    try {
      await f.channel.send('first', { thread: 'first' });
      await f.channel.waitForSent(1);
      await f.channel.send('second', { thread: 'second' });
      await f.channel.waitForSent(2);
      const [first, second] = f.executor.runs.map((r) => r.conversation.id);
      const deleteConversation = f.store.deleteConversation.bind(f.store);
      f.store.deleteConversation = async (id) => {
        if (id === first) throw new Error('database is locked');
        await deleteConversation(id);
      };
      assert.equal(await sweepMonthLater(f), 1);
      assert.equal(await f.store.getConversation(second!), undefined, 'the next one still went');
      assert.ok(await f.store.getConversation(first!));
      assert.deepEqual(
        f.gateway.undeletedConversations().map((u) => [u.conversationId, u.reason]),
        [[first, 'removing it failed; the service log says why']],
      );
    } finally {
      await f.close();
    }
  });

  it('deletes a conversation when asked, but not one with a task running, nor one that does not exist', async () => {
    const f = await gatewayFixture();
    try {
      await f.channel.send('hang: still running', { thread: 'busy' });
      await f.executor.waitForRuns(1);
      const id = f.executor.runs[0]!.conversation.id;
      const task = f.executor.runs[0]!.task.id;
      assert.deepEqual(await f.gateway.deleteConversation(id), { outcome: 'busy', tasks: [task] });
      assert.deepEqual(f.executor.removed, []);
      await f.gateway.stop(id, 'the test');
      assert.deepEqual(await f.gateway.deleteConversation(id), { outcome: 'deleted' });
      assert.deepEqual(f.executor.removed, [id]);
      assert.equal(await f.store.getConversation(id), undefined);
      assert.deepEqual(await f.gateway.deleteConversation(id), { outcome: 'not_found' });
    } finally {
      await f.close();
    }
  });

  it('a message in the thread of a conversation being deleted opens a new conversation: nothing runs on the folders being removed, and the message is answered', async () => {
    const f = await gatewayFixture();
    try {
      await f.channel.send('first', { thread: 'old' });
      await f.channel.waitForSent(1);
      const old = f.executor.runs[0]!.conversation.id;
      // The removal takes a while (a big workspace, podman unshare rm).
      let finishRemoval = () => {};
      let removing = false;
      const ranDuringRemoval: string[] = [];
      const remove = f.executor.removeConversation.bind(f.executor);
      f.executor.removeConversation = async (c) => {
        removing = true;
        await new Promise<void>((resolve) => {
          finishRemoval = resolve;
        });
        await remove(c);
        removing = false;
      };
      const run = f.executor.run.bind(f.executor);
      f.executor.run = async (r, signal, events) => {
        if (removing) ranDuringRemoval.push(r.conversation.id);
        return await run(r, signal, events);
      };
      const deleted = f.gateway.deleteConversation(old);
      await eventually(() => removing, 'the removal to start');
      await f.channel.send('a follow-up while it is deleted', { thread: 'old' });
      // Whatever the follow-up does, it has done it before the removal ends.
      await new Promise((r) => setTimeout(r, 200));
      finishRemoval();
      assert.deepEqual(await deleted, { outcome: 'deleted' });
      const sent = await f.channel.waitForSent(2);
      assert.match(sent[1]!.delivery.text, /a follow-up while it is deleted/, 'it is answered');
      const fresh = await f.store.findConversationByThread('app', 'web', 'old');
      assert.ok(fresh, 'the thread has a conversation again');
      assert.notEqual(fresh.id, old, 'a new one');
      assert.ok(
        !ranDuringRemoval.includes(old),
        'no task ran in the conversation while its folders were removed',
      );
      assert.equal(f.executor.runs.at(-1)!.conversation.id, fresh.id);
    } finally {
      await f.close();
    }
  });

  it('a sweep does not delete a conversation that got a queued task after the sweep listed it', async () => {
    const f = await gatewayFixture({ maxConcurrent: 1 });
    try {
      await f.channel.send('first', { thread: 'a' });
      await f.channel.waitForSent(1);
      await f.channel.send('second', { thread: 'b' });
      await f.channel.waitForSent(2);
      const [a, b] = f.executor.runs.map((r) => r.conversation.id);
      let finishRemoval = () => {};
      let removing = false;
      const remove = f.executor.removeConversation.bind(f.executor);
      f.executor.removeConversation = async (c) => {
        if (c.id === a) {
          removing = true;
          await new Promise<void>((resolve) => {
            finishRemoval = resolve;
          });
        }
        await remove(c);
      };
      const sweep = sweepMonthLater(f);
      await eventually(() => removing, 'the removal of the first to start');
      // The only place is taken, so b's follow-up waits in the queue.
      await f.channel.send('hang: keeps the only place', { thread: 'c' });
      await f.executor.waitForRuns(3);
      await f.channel.send('a follow-up that waits its turn', { thread: 'b' });
      await eventually(
        async () => (await f.store.listTasks({ conversationId: b!, states: ['queued'] })).length,
        'the follow-up to be queued',
      );
      finishRemoval();
      await sweep;
      assert.deepEqual(f.executor.removed, [a], 'b, busy now, is kept');
      assert.ok(await f.store.getConversation(b!));
      f.executor.releaseAll();
      const sent = await f.channel.waitForSent(4);
      assert.ok(
        sent.some((s) => /a follow-up that waits its turn/.test(s.delivery.text)),
        'the follow-up is answered',
      );
    } finally {
      await f.close();
    }
  });
});
