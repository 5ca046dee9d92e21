import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configFrom, eventually, gatewayFixture, repoYaml } from '../harness/gateway-fixture.ts';

describe('a reloaded config', () => {
  it('waits until a busy repository is idle before replacing its channels', async () => {
    const f = await gatewayFixture({ repos: ['app'] });
    try {
      const before = f.channel;
      await before.send('hang until reload', { thread: 'x' });
      await f.executor.waitForRuns(1);
      const next = await configFrom(
        `repos:\n${repoYaml('app', '    model: claude-opus-4-1\n')}${repoYaml('extra')}`,
      );
      await f.gateway.applyConfig(next);
      assert.ok(f.channels.get('extra'), 'a new repository starts at once');
      assert.equal(f.channels.get('extra')!.started, 1);
      assert.equal(before.stopped, 0, 'the busy repository keeps its channels');
      assert.equal(f.channels.get('app'), before);
      f.executor.finishAll();
      const after = await (async () => {
        for (let i = 0; i < 200 && f.channels.get('app') === before; i++)
          await new Promise((r) => setTimeout(r, 10));
        return f.channels.get('app')!;
      })();
      assert.notEqual(after, before, 'channels rebuilt once idle');
      assert.equal(before.stopped, 1);
      // The first reply goes out through whichever channel is current when it is sent.
      await after.send('new conversation', { thread: 'y', id: 'second-message' });
      await eventually(() => before.sent.length + after.sent.length === 2, 'both replies');
      assert.equal(f.executor.runs[1]!.conversation.model, 'claude-opus-4-1');
    } finally {
      await f.close();
    }
  });

  it('stops the channels of a removed repository', async () => {
    const f = await gatewayFixture({ repos: ['app', 'gone'] });
    try {
      const gone = f.channels.get('gone')!;
      await f.gateway.applyConfig(await configFrom(`repos:\n${repoYaml('app')}`));
      assert.equal(gone.stopped, 1);
      await assert.rejects(gone.send('anyone there?'));
    } finally {
      await f.close();
    }
  });
});
