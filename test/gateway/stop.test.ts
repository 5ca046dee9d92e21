import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventually, gatewayFixture } from '../harness/gateway-fixture.ts';

describe('stopping', () => {
  it('stops a running task, aborts its executor and tells the thread', async () => {
    const f = await gatewayFixture();
    try {
      await f.channel.send('hang forever', { thread: 's' });
      await f.executor.waitForRuns(1);
      const taskId = f.executor.runs[0]!.task.id;
      const result = await f.gateway.stop(taskId, 'carol');
      assert.deepEqual(result.stopped, [taskId]);
      const [sent] = await f.channel.waitForSent(1);
      assert.equal(sent!.delivery.kind, 'stopped');
      assert.match(sent!.delivery.text, /Stopped by carol/);
      assert.match(sent!.delivery.text, /partial work/);
      assert.equal((await f.store.getTask(taskId))!.state, 'stopped');
      assert.equal(f.executor.active, 0);
    } finally {
      await f.close();
    }
  });

  it('stops a queued task before it starts, so it never runs', async () => {
    const f = await gatewayFixture({ maxConcurrent: 1 });
    try {
      await f.channel.send('hang a', { thread: 'a' });
      await f.executor.waitForRuns(1);
      await f.channel.send('never run me', { thread: 'b' });
      const queued = await eventually(
        async () => (await f.store.listTasks({ states: ['queued'] }))[0],
        'queued task',
      );
      assert.deepEqual((await f.gateway.stop(queued.id, 'carol')).stopped, [queued.id]);
      f.executor.finishAll();
      await f.channel.waitForSent(2);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(f.executor.runs.length, 1);
      const stoppedNotice = f.channel.sent.find((s) => s.delivery.kind === 'stopped')!;
      assert.match(stoppedNotice.delivery.text, /before it started/);
    } finally {
      await f.close();
    }
  });

  it('stops everything of a conversation given its id, and nothing of others', async () => {
    const f = await gatewayFixture();
    try {
      await f.channel.send('hang in c', { thread: 'c' });
      await f.channel.send('hang in d', { thread: 'd' });
      await f.executor.waitForRuns(2);
      const c = f.executor.runs.find((r) => r.parts[0]!.text === 'hang in c')!;
      await f.channel.send('queued in c', { thread: 'c' });
      await eventually(
        async () => (await f.store.listTasks({ states: ['queued'] })).length === 1,
        'queued',
      );
      const { stopped } = await f.gateway.stop(c.conversation.id, 'carol');
      assert.equal(stopped.length, 2);
      const d = f.executor.runs.find((r) => r.parts[0]!.text === 'hang in d')!;
      assert.equal((await f.store.getTask(d.task.id))!.state, 'running');
    } finally {
      await f.close();
    }
  });

  it('reports nothing stopped for an unknown or finished id', async () => {
    const f = await gatewayFixture();
    try {
      assert.deepEqual((await f.gateway.stop('t_nope', 'carol')).stopped, []);
      await f.channel.send('quick');
      await f.channel.waitForSent(1);
      const [task] = await f.store.listTasks({});
      assert.deepEqual((await f.gateway.stop(task!.id, 'carol')).stopped, []);
    } finally {
      await f.close();
    }
  });
});
