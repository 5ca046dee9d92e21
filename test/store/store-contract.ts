import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { IncomingMessage } from '../../src/domain/index.ts';
import type { Store } from '../../src/store/types.ts';

let n = 0;
export function msg(over: Partial<IncomingMessage> = {}): IncomingMessage {
  n++;
  return {
    repoId: 'app',
    channel: 'email',
    externalId: `<m${n}@example.com>`,
    threadKeys: [],
    ownThreadKey: `<m${n}@example.com>`,
    sender: { id: 'alice@example.com', name: 'Alice' },
    text: `hello ${n}`,
    attachments: [],
    receivedAt: 1_000 + n,
    ...over,
  };
}

/**
 * The Store contract: every implementation (SQLite now, PostgreSQL later) runs these.
 * `open` gives a fresh, empty store for each test.
 */
export function storeContract(name: string, open: () => Promise<Store> | Store): void {
  describe(`${name} store contract`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await open();
    });
    afterEach(async () => {
      await store.close();
    });

    async function conversation(thread = 'k') {
      return await store.createConversation({
        repoId: 'app',
        channel: 'email',
        threadKey: thread,
        title: 't',
      });
    }

    it('stores a message as received and returns it with every field', async () => {
      const input = msg({
        subject: 'S',
        model: 'opus',
        meta: { a: 1 },
        attachments: [{ name: 'a.txt', path: '/x/a.txt', size: 3 }],
      });
      const { message, duplicate } = await store.insertMessage(input);
      assert.equal(duplicate, false);
      assert.equal(message.state, 'received');
      assert.deepEqual(await store.getMessage(message.id), {
        ...input,
        id: message.id,
        state: 'received',
      });
    });

    it('recognises a second delivery by external id and writes nothing', async () => {
      const a = await store.insertMessage(msg({ externalId: 'same' }));
      const b = await store.insertMessage(msg({ externalId: 'same', text: 'other' }));
      assert.equal(b.duplicate, true);
      assert.equal(b.message.id, a.message.id);
      assert.equal((await store.listMessages({})).length, 1);
    });

    it('recognises a re-delivery with a new id by its content hash, only within its repository', async () => {
      const a = await store.insertMessage(msg({ contentHash: 'h1' }));
      const b = await store.insertMessage(msg({ contentHash: 'h1' }));
      assert.equal(b.duplicate, true);
      assert.equal(b.message.id, a.message.id);
      const c = await store.insertMessage(msg({ contentHash: 'h1', repoId: 'other' }));
      assert.equal(c.duplicate, false);
    });

    it('opens a task for the first message and merges later ones into it while it is queued', async () => {
      const c = await conversation();
      const m1 = (await store.insertMessage(msg())).message;
      const m2 = (await store.insertMessage(msg())).message;
      const a = await store.queueMessage(m1.id, c.id);
      const b = await store.queueMessage(m2.id, c.id);
      assert.equal(a.merged, false);
      assert.equal(b.merged, true);
      assert.equal(b.task.id, a.task.id);
      assert.equal((await store.getMessage(m1.id))!.state, 'queued');
      assert.equal((await store.getMessage(m2.id))!.state, 'merged');
      assert.deepEqual(
        (await store.listMessages({ taskId: a.task.id })).map((m) => m.id),
        [m1.id, m2.id],
      );
    });

    it('does not merge into a running task: a new task waits behind it', async () => {
      const c = await conversation();
      const first = await store.queueMessage((await store.insertMessage(msg())).message.id, c.id);
      await store.updateTask(first.task.id, { state: 'running', startedAt: 5 });
      const second = await store.queueMessage((await store.insertMessage(msg())).message.id, c.id);
      assert.equal(second.merged, false);
      assert.notEqual(second.task.id, first.task.id);
      assert.ok(second.task.seq > first.task.seq);
    });

    it('is idempotent when a message is queued twice', async () => {
      const c = await conversation();
      const m = (await store.insertMessage(msg())).message;
      const a = await store.queueMessage(m.id, c.id);
      const b = await store.queueMessage(m.id, c.id);
      assert.equal(b.task.id, a.task.id);
      assert.equal((await store.listTasks({})).length, 1);
    });

    it('numbers tasks in arrival order across conversations', async () => {
      const ids: string[] = [];
      for (const k of ['a', 'b', 'c']) {
        const c = await conversation(k);
        ids.push(
          (await store.queueMessage((await store.insertMessage(msg())).message.id, c.id)).task.id,
        );
      }
      assert.deepEqual(
        (await store.listTasks({ states: ['queued'] })).map((t) => t.id),
        ids,
      );
      assert.deepEqual(
        (await store.listTasks({ limit: 2 })).map((t) => t.id),
        ids.slice(0, 2),
      );
    });

    it('finishes a task, its queued messages and its reply in one step', async () => {
      const c = await conversation();
      const m1 = (await store.insertMessage(msg())).message;
      const m2 = (await store.insertMessage(msg())).message;
      const { task } = await store.queueMessage(m1.id, c.id);
      await store.queueMessage(m2.id, c.id);
      const d = await store.finishTask(task.id, {
        state: 'done',
        outcome: 'success',
        usage: { costUsd: 0.5, turns: 3 },
        messageState: 'answered',
        delivery: {
          repoId: 'app',
          channel: 'email',
          conversationId: c.id,
          taskId: task.id,
          kind: 'reply',
          text: 'hi',
          files: ['/o/f'],
        },
      });
      const t = (await store.getTask(task.id))!;
      assert.equal(t.state, 'done');
      assert.deepEqual(t.usage, { costUsd: 0.5, turns: 3 });
      assert.ok(t.finishedAt);
      assert.equal((await store.getMessage(m1.id))!.state, 'answered');
      assert.equal(
        (await store.getMessage(m2.id))!.state,
        'merged',
        'merged messages keep their state',
      );
      assert.equal(d!.state, 'pending');
      assert.deepEqual(d!.files, ['/o/f']);
      assert.deepEqual(
        (await store.listDeliveries({ states: ['pending'] })).map((x) => x.id),
        [d!.id],
      );
    });

    const filing = { channel: 'email' as const, title: 'Fix it', ack: 'got it' };

    it('files the first message of a thread: opens its conversation, maps its keys, queues it and records one acknowledgement', async () => {
      const m = (await store.insertMessage(msg({ ownThreadKey: 'own-1', threadKeys: ['ref-1'] })))
        .message;
      const f = await store.fileMessage(m.id, { ...filing, model: 'opus' });
      assert.equal(f.repeated, false);
      assert.equal(f.merged, false);
      assert.equal(f.conversation.threadKey, 'own-1');
      assert.equal(f.conversation.title, 'Fix it');
      assert.equal(f.conversation.model, 'opus');
      for (const key of ['own-1', 'ref-1'])
        assert.equal(
          (await store.findConversationByThread('app', 'email', key))!.id,
          f.conversation.id,
        );
      const got = (await store.getMessage(m.id))!;
      assert.deepEqual(
        [got.state, got.taskId, got.conversationId],
        ['queued', f.task.id, f.conversation.id],
      );
      assert.equal(f.task.state, 'queued');
      assert.deepEqual(
        (await store.listDeliveries({})).map((d) => [
          d.kind,
          d.text,
          d.messageId,
          d.conversationId,
        ]),
        [['ack', 'got it', m.id, f.conversation.id]],
      );
      assert.equal(f.ack!.id, (await store.listDeliveries({}))[0]!.id);
    });

    it('files a follow-up into the conversation of its first known thread key, with no second acknowledgement', async () => {
      const first = (await store.insertMessage(msg({ ownThreadKey: 'a' }))).message;
      const opened = await store.fileMessage(first.id, filing);
      const other = (await store.insertMessage(msg({ ownThreadKey: 'b' }))).message;
      await store.fileMessage(other.id, filing);
      const reply = (
        await store.insertMessage(
          msg({ ownThreadKey: 'a-reply', threadKeys: ['unknown', 'a', 'b'] }),
        )
      ).message;
      const f = await store.fileMessage(reply.id, filing);
      assert.equal(f.conversation.id, opened.conversation.id);
      assert.equal(f.merged, true, 'the first task has not started, so the reply joins it');
      assert.equal(f.task.id, opened.task.id);
      assert.equal(f.ack, undefined);
      assert.equal(
        (await store.findConversationByThread('app', 'email', 'a-reply'))!.id,
        opened.conversation.id,
      );
      assert.equal(
        (await store.listDeliveries({})).filter((d) => d.kind === 'ack').length,
        2,
        'one per opened conversation',
      );
    });

    it('files a message of a channel that does not acknowledge, or on the channel a schedule names, without an acknowledgement', async () => {
      const m = (await store.insertMessage(msg({ channel: 'schedule', ownThreadKey: 'tag:1' })))
        .message;
      const f = await store.fileMessage(m.id, {
        channel: 'slack',
        title: 'Scheduled: x',
        scheduleId: 'app/x',
      });
      assert.equal(f.conversation.channel, 'slack');
      assert.equal(f.conversation.scheduleId, 'app/x');
      assert.equal(f.task.scheduleId, 'app/x');
      assert.equal(
        (await store.findConversationByThread('app', 'slack', 'tag:1'))!.id,
        f.conversation.id,
      );
      assert.deepEqual(await store.listDeliveries({}), []);
    });

    it('files a message once: a second filing writes nothing and returns the first', async () => {
      const m = (await store.insertMessage(msg({ ownThreadKey: 'once' }))).message;
      const a = await store.fileMessage(m.id, filing);
      const b = await store.fileMessage(m.id, { ...filing, title: 'other' });
      assert.equal(b.repeated, true);
      assert.deepEqual(
        [b.conversation.id, b.task.id, b.merged, b.ack?.id],
        [a.conversation.id, a.task.id, false, a.ack!.id],
      );
      assert.equal((await store.listConversations({})).length, 1);
      assert.equal((await store.listTasks({})).length, 1);
      assert.equal((await store.listDeliveries({})).length, 1);
    });

    it('leaves nothing of a filing that fails at its last write: the message stays received', async () => {
      const m = (await store.insertMessage(msg({ ownThreadKey: 'torn' }))).message;
      // A NULL text breaks the acknowledgement's insert, the filing's last write.
      await assert.rejects(store.fileMessage(m.id, { ...filing, ack: null as unknown as string }));
      assert.equal((await store.getMessage(m.id))!.state, 'received');
      assert.deepEqual(await store.listConversations({}), []);
      assert.equal(await store.findConversationByThread('app', 'email', 'torn'), undefined);
      assert.deepEqual(await store.listTasks({}), []);
      const f = await store.fileMessage(m.id, filing);
      assert.equal(f.repeated, false);
      assert.ok(f.ack);
    });

    it('rejects a message and records the notice to its sender in one step, once', async () => {
      const m = (await store.insertMessage(msg())).message;
      const notice = { repoId: 'app', channel: 'email' as const, text: 'too big' };
      const d = await store.rejectMessage(m.id, 'over the size limit', notice);
      assert.deepEqual([d!.kind, d!.messageId, d!.state], ['rejected', m.id, 'pending']);
      const got = (await store.getMessage(m.id))!;
      assert.deepEqual([got.state, got.stateReason], ['rejected', 'over the size limit']);
      assert.equal(await store.rejectMessage(m.id, 'again', notice), undefined);
      assert.equal((await store.listDeliveries({})).length, 1);
      assert.equal((await store.getMessage(m.id))!.stateReason, 'over the size limit');
      await assert.rejects(store.fileMessage(m.id, filing), { code: 'internal' });
    });

    it('records why a message was rejected or interrupted', async () => {
      const m = (await store.insertMessage(msg())).message;
      await store.setMessageState(m.id, 'rejected', { reason: 'not authorized' });
      const got = (await store.getMessage(m.id))!;
      assert.equal(got.state, 'rejected');
      assert.equal(got.stateReason, 'not authorized');
      assert.deepEqual(
        (await store.listMessages({ states: ['rejected'] })).map((x) => x.id),
        [m.id],
      );
    });

    it('lists the refs of messages in given states, in the order it lists the messages', async () => {
      const late = (await store.insertMessage(msg({ receivedAt: 9_000 }))).message;
      const early = (await store.insertMessage(msg({ receivedAt: 10, channel: 'slack' }))).message;
      const rejected = (await store.insertMessage(msg())).message;
      await store.setMessageState(rejected.id, 'rejected', { reason: 'no' });
      assert.deepEqual(await store.listMessageRefs({ states: ['received'] }), [
        { id: early.id, repoId: 'app', channel: 'slack' },
        { id: late.id, repoId: 'app', channel: 'email' },
      ]);
      assert.deepEqual(
        (await store.listMessageRefs({ states: ['received'] })).map((r) => r.id),
        (await store.listMessages({ states: ['received'] })).map((m) => m.id),
      );
    });

    it('keeps task events in order and pages them', async () => {
      const c = await conversation();
      const { task } = await store.queueMessage(
        (await store.insertMessage(msg())).message.id,
        c.id,
      );
      for (let i = 0; i < 5; i++) await store.appendEvent(task.id, 'line', { i });
      const all = await store.listEvents(task.id);
      assert.deepEqual(
        all.map((e) => e.seq),
        [1, 2, 3, 4, 5],
      );
      assert.deepEqual(
        (await store.listEvents(task.id, 2, 2)).map((e) => (e.data as { i: number }).i),
        [2, 3],
      );
    });

    const webNotice = (text: string) =>
      store.createDelivery({ repoId: 'app', channel: 'web', kind: 'notice', text });

    it('tracks a delivery from pending through failed attempts to sent', async () => {
      const d = await webNotice('x');
      await store.markDelivery(d.id, { state: 'pending', error: 'timeout' });
      await store.markDelivery(d.id, { state: 'pending', error: 'refused' });
      let got = (await store.listDeliveries({}))[0]!;
      assert.equal(got.attempts, 2);
      assert.equal(got.lastError, 'refused');
      await store.markDelivery(d.id, { state: 'sent' });
      got = (await store.listDeliveries({}))[0]!;
      assert.equal(got.state, 'sent');
      assert.ok(got.sentAt);
    });

    it('gets a delivery by id, and lists pending ones as refs in the order it lists them', async () => {
      const c = await conversation();
      const first = await store.createDelivery({
        repoId: 'app',
        channel: 'email',
        conversationId: c.id,
        kind: 'ack',
        text: 'got it',
      });
      const notice = await webNotice('x');
      const sent = await webNotice('y');
      await store.markDelivery(notice.id, { state: 'pending', error: 'timeout' });
      await store.markDelivery(sent.id, { state: 'sent' });
      assert.deepEqual(await store.getDelivery(first.id), first);
      assert.equal((await store.getDelivery(sent.id))!.state, 'sent');
      assert.equal(await store.getDelivery('d_unknown'), undefined);
      assert.deepEqual(await store.listDeliveryRefs({ states: ['pending'] }), [
        { id: first.id, repoId: 'app', channel: 'email', conversationId: c.id, attempts: 0 },
        { id: notice.id, repoId: 'app', channel: 'web', attempts: 1 },
      ]);
      assert.deepEqual(
        (await store.listDeliveryRefs({ states: ['pending'] })).map((r) => r.id),
        (await store.listDeliveries({ states: ['pending'] })).map((d) => d.id),
      );
    });

    it('maps every thread key of a conversation to it and ignores keys already mapped', async () => {
      const c = await conversation('first');
      const other = await conversation('second');
      await store.addThreadKeys(c.id, ['first', 'reply-1', 'second']);
      assert.equal((await store.findConversationByThread('app', 'email', 'reply-1'))!.id, c.id);
      assert.equal(
        (await store.findConversationByThread('app', 'email', 'second'))!.id,
        other.id,
        'an existing mapping is not stolen',
      );
      assert.equal(
        await store.findConversationByThread('app', 'slack', 'first'),
        undefined,
        'keys are per channel',
      );
    });

    it('sets and clears the agent session of a conversation', async () => {
      const c = await conversation();
      await store.updateConversation(c.id, { sessionId: 's-1' });
      assert.equal((await store.getConversation(c.id))!.sessionId, 's-1');
      await store.updateConversation(c.id, { sessionId: null });
      assert.equal((await store.getConversation(c.id))!.sessionId, undefined);
    });

    it('lists idle conversations but not ones with a queued or running task', async () => {
      const idle = await conversation('idle');
      const busy = await conversation('busy');
      await store.queueMessage((await store.insertMessage(msg())).message.id, busy.id);
      const list = await store.listIdleConversationsBefore(Date.now() + 1000);
      assert.deepEqual(
        list.map((c) => c.id),
        [idle.id],
      );
    });

    it('takes a conversation off its threads for deletion, unless it has a queued task', async () => {
      const idle = await conversation('idle');
      const busy = await conversation('busy');
      const { task } = await store.queueMessage(
        (await store.insertMessage(msg())).message.id,
        busy.id,
      );
      assert.deepEqual(await store.detachConversation(busy.id), [task.id]);
      assert.equal((await store.findConversationByThread('app', 'email', 'busy'))?.id, busy.id);
      assert.deepEqual(await store.detachConversation(idle.id), []);
      assert.equal(await store.findConversationByThread('app', 'email', 'idle'), undefined);
      assert.ok(await store.getConversation(idle.id), 'kept until it is deleted');
      const follow = (await store.insertMessage(msg({ threadKeys: ['idle'] }))).message;
      const filed = await store.fileMessage(follow.id, { channel: 'email', title: 't' });
      assert.notEqual(filed.conversation.id, idle.id, 'a message in its thread opens a new one');
    });

    it('deletes a conversation with its messages, tasks, events, deliveries and thread keys', async () => {
      const c = await conversation('gone');
      const keep = await conversation('kept');
      const m = (await store.insertMessage(msg())).message;
      const { task } = await store.queueMessage(m.id, c.id);
      await store.appendEvent(task.id, 'x', {});
      await store.finishTask(task.id, {
        state: 'done',
        messageState: 'answered',
        delivery: {
          repoId: 'app',
          channel: 'email',
          conversationId: c.id,
          taskId: task.id,
          kind: 'reply',
          text: 'r',
        },
      });
      await store.queueMessage((await store.insertMessage(msg())).message.id, keep.id);
      await store.deleteConversation(c.id);
      assert.equal(await store.getConversation(c.id), undefined);
      assert.equal(await store.getMessage(m.id), undefined);
      assert.equal(await store.getTask(task.id), undefined);
      assert.deepEqual(await store.listEvents(task.id), []);
      assert.deepEqual(await store.listDeliveries({ conversationId: c.id }), []);
      assert.equal(await store.findConversationByThread('app', 'email', 'gone'), undefined);
      assert.equal((await store.listTasks({})).length, 1, 'the other conversation is untouched');
    });
  });
}
