import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Held, HeldSandboxes } from '../../src/execution/held-sandboxes.ts';

// The bookkeeping of held sandboxes, with stand-ins for the sandboxes themselves: the real
// ones are tested in test/gateway/held-sandbox.test.ts.
function fake(name: string, ready = true): Held {
  return {
    key: name,
    dirs: {} as Held['dirs'],
    spare: false,
    netns: {} as Held['netns'],
    sandbox: {
      ready,
      run: async () => ({ outcome: 'exited', exitCode: 0, stderrTail: '' }),
      discard: async () => undefined,
    },
  };
}

function keeper(opts: { max?: number; maxIdleMs?: number } = {}) {
  const discarded: string[] = [];
  const held = new HeldSandboxes({
    maxIdleMs: opts.maxIdleMs ?? 60_000,
    max: opts.max,
    discard: async (h) => {
      discarded.push(h.key);
    },
  });
  return { held, discarded };
}

describe('held sandboxes', () => {
  it('hold one per key, and start none while one is held or starting', async () => {
    const { held } = keeper();
    let starts = 0;
    const start = async () => {
      starts++;
      return fake('a');
    };
    held.replenish('a', start);
    held.replenish('a', start);
    await held.settle();
    held.replenish('a', start);
    assert.equal(starts, 1);
    assert.equal(held.take('a')?.key, 'a');
    assert.equal(held.take('a'), undefined, 'taken once');
  });

  it('discard the oldest when more than the limit would be held', async () => {
    const { held, discarded } = keeper({ max: 2 });
    for (const k of ['a', 'b', 'c']) {
      held.replenish(k, async () => fake(k));
      await held.settle();
    }
    assert.deepEqual(discarded, ['a']);
    assert.equal(held.take('a'), undefined);
    assert.equal(held.take('c')?.key, 'c');
  });

  it('give out none whose sandbox is gone, and discard it', async () => {
    const { held, discarded } = keeper();
    held.replenish('a', async () => fake('a', false));
    await held.settle();
    assert.equal(held.take('a'), undefined);
    assert.deepEqual(discarded, ['a']);
  });

  it('discard one unused for the idle time', async () => {
    const { held, discarded } = keeper({ maxIdleMs: 50 });
    held.replenish('a', async () => fake('a'));
    await held.settle();
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(discarded, ['a']);
    assert.equal(held.take('a'), undefined);
  });

  it('drop one on request, waiting for one still starting', async () => {
    const { held, discarded } = keeper();
    let release: () => void = () => undefined;
    held.replenish('a', () => new Promise<Held>((r) => (release = () => r(fake('a')))));
    const dropped = held.drop('a');
    release();
    await dropped;
    assert.deepEqual(discarded, ['a']);
    assert.equal(held.take('a'), undefined);
  });

  it('discard all when closed, and any that finishes starting after', async () => {
    const { held, discarded } = keeper();
    held.replenish('a', async () => fake('a'));
    await held.settle();
    let release: () => void = () => undefined;
    held.replenish('b', () => new Promise<Held>((r) => (release = () => r(fake('b')))));
    const closed = held.close();
    release();
    await closed;
    assert.deepEqual(discarded.sort(), ['a', 'b']);
    let started = false;
    held.replenish('c', async () => {
      started = true;
      return fake('c');
    });
    assert.equal(started, false);
  });
});
