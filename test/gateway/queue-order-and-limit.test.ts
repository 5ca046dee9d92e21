import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gatewayFixture } from '../harness/gateway-fixture.ts';

describe('the task queue', () => {
  it('starts tasks in arrival order and never runs more than max_concurrent at once', async () => {
    const f = await gatewayFixture({ maxConcurrent: 2 });
    try {
      for (let i = 0; i < 6; i++) await f.channel.send(`hang ${i}`, { thread: `t${i}` });
      await f.executor.waitForRuns(2);
      // Give the gateway a chance to (wrongly) start more.
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(f.executor.runs.length, 2);
      for (let i = 0; i < 4; i++) {
        f.executor.release(f.executor.runs[i]!.task.id);
        await f.executor.waitForRuns(i + 3);
      }
      f.executor.finishAll();
      await f.channel.waitForSent(6);
      assert.deepEqual(
        f.executor.runs.map((r) => r.parts[0]!.text),
        ['hang 0', 'hang 1', 'hang 2', 'hang 3', 'hang 4', 'hang 5'],
      );
      assert.equal(f.executor.maxActive, 2);
    } finally {
      await f.close();
    }
  });

  it('lets a waiting task of another conversation pass a conversation that is busy', async () => {
    const f = await gatewayFixture({ maxConcurrent: 2 });
    try {
      await f.channel.send('hang first', { thread: 'a' });
      await f.executor.waitForRuns(1);
      await f.channel.send('second in a', { thread: 'a' });
      await f.channel.send('first in b', { thread: 'b' });
      await f.executor.waitForRuns(2);
      assert.equal(f.executor.runs[1]!.parts[0]!.text, 'first in b');
      f.executor.releaseAll();
      await f.channel.waitForSent(3);
    } finally {
      await f.close();
    }
  });

  it('applies a lower max_concurrent from a reloaded config to tasks not yet started', async () => {
    const f = await gatewayFixture({ maxConcurrent: 3 });
    try {
      const next = structuredClone(f.gateway.config);
      next.execution.max_concurrent = 1;
      await f.gateway.applyConfig(next);
      for (let i = 0; i < 3; i++) await f.channel.send(`hang ${i}`, { thread: `t${i}` });
      await f.executor.waitForRuns(1);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(f.executor.runs.length, 1);
      f.executor.finishAll();
      await f.channel.waitForSent(3);
      assert.equal(f.executor.maxActive, 1);
    } finally {
      await f.close();
    }
  });
});
