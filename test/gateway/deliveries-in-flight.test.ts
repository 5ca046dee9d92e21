import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventually, gatewayFixture, repoYaml } from '../harness/gateway-fixture.ts';
import type { MemoryChannel } from '../harness/memory-channel.ts';

const yaml = (inFlight: number) =>
  `execution:\n  max_concurrent: 20\n  deliveries_in_flight: ${inFlight}\n  shutdown_grace_seconds: 1\nrepos:\n${repoYaml('app')}`;

/** Lets held deliveries go, round after round, until `n` are sent. */
async function releaseUntilSent(channel: MemoryChannel, n: number): Promise<void> {
  while (channel.sent.length < n) {
    channel.releaseHeld();
    await eventually(
      () => channel.inFlight > 0 || channel.sent.length === n,
      'the next deliveries',
    );
  }
}

describe('deliveries in flight', () => {
  it('hands a channel at most deliveries_in_flight at once and sends the rest once those finish, losing none', async () => {
    const f = await gatewayFixture({ yaml: yaml(3) });
    try {
      f.channel.hold = true;
      for (let i = 0; i < 12; i++) await f.channel.send(`task ${i}`, { thread: `t${i}` });
      // Every task has ended and written its reply; only the bound keeps them back.
      await eventually(
        async () => (await f.store.listDeliveries({ states: ['pending'] })).length === 12,
        'twelve replies written',
      );
      await eventually(() => f.channel.inFlight >= 3, 'three deliveries in flight');
      assert.equal(f.channel.inFlight, 3);
      assert.equal(f.channel.attempts.length, 3, 'only three were handed to the channel');

      await releaseUntilSent(f.channel, 12);
      assert.equal(f.channel.maxInFlight, 3);
      assert.equal(f.channel.attempts.length, 12, 'each delivery handed over once');
      const texts = f.channel.sent.map((s) => s.delivery.text).sort();
      assert.deepEqual(
        texts,
        Array.from({ length: 12 }, (_, i) => `done: alice: task ${i}`).sort(),
      );
      await eventually(
        async () => (await f.store.listDeliveries({ states: ['sent'] })).length === 12,
        'every delivery marked sent',
      );
    } finally {
      f.channel.hold = false;
      f.channel.releaseHeld();
      await f.close();
    }
  });

  it("keeps a conversation's deliveries in order and one at a time under the bound", async () => {
    const f = await gatewayFixture({ yaml: yaml(2) });
    try {
      f.channel.hold = true;
      // How many of each conversation's deliveries the channel holds at once, at worst.
      const deliver = f.channel.deliver.bind(f.channel);
      const active = new Map<string, number>();
      let worst = 0;
      f.channel.deliver = async (d, ctx) => {
        const n = (active.get(d.conversationId!) ?? 0) + 1;
        active.set(d.conversationId!, n);
        worst = Math.max(worst, n);
        try {
          await deliver(d, ctx);
        } finally {
          active.set(d.conversationId!, (active.get(d.conversationId!) ?? 1) - 1);
        }
      };
      // Three replies of conversation A wait behind each other, beside one of B and of C.
      for (let i = 1; i <= 3; i++) {
        await f.channel.send(`a${i}`, { thread: 'A' });
        await eventually(
          async () => (await f.store.listDeliveries({})).length === i,
          `reply ${i} of A written`,
        );
      }
      await f.channel.send('b1', { thread: 'B' });
      await f.channel.send('c1', { thread: 'C' });
      await eventually(
        async () => (await f.store.listDeliveries({})).length === 5,
        'five replies written',
      );
      await releaseUntilSent(f.channel, 5);
      assert.equal(f.channel.maxInFlight, 2);
      assert.equal(worst, 1, 'one delivery of a conversation at a time');
      const ofA = f.channel.sent.map((s) => s.delivery.text).filter((t) => t.includes('alice: a'));
      assert.deepEqual(ofA, ['done: alice: a1', 'done: alice: a2', 'done: alice: a3']);
    } finally {
      f.channel.hold = false;
      f.channel.releaseHeld();
      await f.close();
    }
  });
});
