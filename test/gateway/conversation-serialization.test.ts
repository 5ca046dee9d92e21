import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventually, gatewayFixture } from '../harness/gateway-fixture.ts';

describe('one conversation', () => {
  it('runs its tasks strictly one after another and merges messages that arrive meanwhile', async () => {
    const f = await gatewayFixture();
    try {
      await f.channel.send('hang: build the thing', { thread: 'x', from: 'alice' });
      await f.executor.waitForRuns(1);
      f.channel.authorized.add('bob');
      await f.channel.send('also add tests', { thread: 'x', from: 'bob', at: Date.now() + 1 });
      await f.channel.send('and docs', { thread: 'x', from: 'alice', at: Date.now() + 2 });
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(f.executor.runs.length, 1, 'the second task must wait for the first');
      f.executor.finishAll();
      await f.executor.waitForRuns(2);
      const second = f.executor.runs[1]!;
      assert.deepEqual(
        second.parts.map((p) => [p.sender, p.text]),
        [
          ['bob', 'also add tests'],
          ['alice', 'and docs'],
        ],
      );
      assert.equal(second.conversation.id, f.executor.runs[0]!.conversation.id);
      assert.equal(second.firstTask, false, 'a follow-up resumes the session');
      assert.equal(second.conversation.sessionId, `session-${second.conversation.id}`);
      const sent = await f.channel.waitForSent(2);
      assert.equal(sent.length, 2, 'one reply per task, not per message');
      const messages = await f.store.listMessages({ conversationId: second.conversation.id });
      assert.deepEqual(messages.map((m) => m.state).sort(), ['answered', 'answered', 'merged']);
    } finally {
      await f.close();
    }
  });

  it('maps a reply with a known thread key to the same conversation and a new key to a new one', async () => {
    const f = await gatewayFixture();
    try {
      await f.channel.send('one', { thread: 'k1' });
      await f.channel.waitForSent(1);
      await f.channel.send('two', { thread: 'k1' });
      await f.channel.send('three', { thread: 'k2' });
      await f.channel.waitForSent(3);
      const ids = f.executor.runs.map((r) => r.conversation.id);
      assert.equal(ids[0], ids[1]);
      assert.notEqual(ids[0], ids[2]);
    } finally {
      await f.close();
    }
  });

  it('records a repeated delivery of the same message once and runs it once', async () => {
    const f = await gatewayFixture();
    try {
      const a = await f.channel.send('once', { id: 'same-id' });
      const b = await f.channel.send('once', { id: 'same-id' });
      assert.equal(a.duplicate, false);
      assert.equal(b.duplicate, true);
      assert.equal(a.messageId, b.messageId);
      await f.channel.waitForSent(1);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(f.executor.runs.length, 1);
    } finally {
      await f.close();
    }
  });

  it('gives an unauthorized sender no task, no reply and records why', async () => {
    const f = await gatewayFixture();
    try {
      const { messageId } = await f.channel.send('give me secrets', { from: 'mallory' });
      const m = await eventually(async () => {
        const m = await f.store.getMessage(messageId);
        return m?.state === 'rejected' ? m : undefined;
      }, 'rejection');
      assert.equal(m.stateReason, 'sender not authorized');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(f.executor.runs.length, 0);
      assert.equal(f.channel.attempts.length, 0);
      assert.equal(
        (await f.store.listConversations({})).length,
        0,
        'no conversation exists for it',
      );
    } finally {
      await f.close();
    }
  });

  it('refuses a message a channel hands over for another repository', async () => {
    const f = await gatewayFixture({ repos: ['app', 'other'] });
    try {
      const app = f.channels.get('app')!;
      await assert.rejects(
        app.sink!.receive({
          repoId: 'other',
          channel: 'web',
          externalId: 'x',
          threadKeys: [],
          ownThreadKey: 'x',
          sender: { id: 'alice' },
          text: 'cross-repo',
          attachments: [],
          receivedAt: Date.now(),
        }),
        /handed over a message for web of other/,
      );
    } finally {
      await f.close();
    }
  });

  it('answers a failed task in the thread and a throwing executor with a generic notice', async () => {
    const f = await gatewayFixture();
    try {
      await f.channel.send('please fail', { thread: 'f1' });
      await f.channel.send('please throw', { thread: 'f2' });
      const sent = await f.channel.waitForSent(2);
      const byThread = new Map(sent.map((s) => [s.conversation!.threadKey, s.delivery]));
      assert.equal(byThread.get('f1')!.kind, 'error');
      assert.equal(byThread.get('f1')!.text, 'it failed');
      assert.equal(byThread.get('f2')!.kind, 'error');
      assert.match(byThread.get('f2')!.text, /internal error/);
      assert.doesNotMatch(byThread.get('f2')!.text, /exploded/, 'internal detail stays in the log');
      const tasks = await f.store.listTasks({});
      assert.deepEqual(
        tasks.map((t) => t.state),
        ['failed', 'failed'],
      );
    } finally {
      await f.close();
    }
  });
});
