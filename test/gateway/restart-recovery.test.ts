import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type Delivery, TERMINAL_MESSAGE_STATES } from '../../src/domain/index.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import { deliveredTo, gatewayStateDir, kill9, startGateway } from '../harness/gateway-process.ts';

/** Restarts normally and waits until `n` deliveries exist, then checks every message ended. */
async function recoverAndSettle(dir: string, n: number): Promise<Delivery[]> {
  const c = startGateway(dir, 'normal');
  try {
    await c.waitFor((e) => e.ev === 'ready', 'ready');
    for (let i = 0; i < 500 && deliveredTo(dir).length < n; i++)
      await new Promise((r) => setTimeout(r, 20));
    // Time for a wrong second delivery to show up.
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    await kill9(c);
  }
  const store = openSqliteStore(join(dir, 'state.db'));
  try {
    const open = (await store.listMessages({})).filter(
      (m) => !TERMINAL_MESSAGE_STATES.includes(m.state),
    );
    assert.deepEqual(open, [], 'every message ended in a terminal state');
    assert.deepEqual(await store.listDeliveries({ states: ['pending', 'failed'] }), []);
  } finally {
    await store.close();
  }
  return deliveredTo(dir);
}

describe('a gateway killed with SIGKILL and started again', () => {
  it('processes a message that was stored but not yet authorized', async () => {
    const dir = gatewayStateDir();
    try {
      const c = startGateway(dir, 'hang-authorize');
      await c.waitFor((e) => e.ev === 'ready', 'ready');
      c.send({ id: 'm1', thread: 't1', text: 'do it' });
      await c.waitFor((e) => e.ev === 'stored', 'stored');
      await kill9(c);
      const d = await recoverAndSettle(dir, 1);
      assert.deepEqual(
        d.map((x) => [x.kind, x.text]),
        [['reply', 'done: alice: do it']],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports a running task as interrupted once and still runs the task queued behind it', async () => {
    const dir = gatewayStateDir(1);
    try {
      const c = startGateway(dir, 'hang-run');
      await c.waitFor((e) => e.ev === 'ready', 'ready');
      c.send({ id: 'm1', thread: 't1', text: 'hang please' });
      await c.waitFor((e) => e.ev === 'task' && e.state === 'running', 'running task');
      c.send({ id: 'm2', thread: 't2', text: 'second' });
      await c.waitFor((e) => e.ev === 'stored' && e.id === 'm2', 'second stored');
      await c.waitFor(
        (e) =>
          e.ev === 'task' &&
          e.state === 'queued' &&
          c.events.filter((x) => x.ev === 'task' && x.state === 'queued').length === 2,
        'second queued',
      );
      await kill9(c);
      const d = await recoverAndSettle(dir, 2);
      assert.equal(d.length, 2);
      assert.deepEqual(d.map((x) => x.kind).sort(), ['interrupted', 'reply']);
      assert.match(
        d.find((x) => x.kind === 'interrupted')!.text,
        /restarted while working on this/,
      );
      assert.equal(d.find((x) => x.kind === 'reply')!.text, 'done: alice: second');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sends a reply that was stored but not yet sent, exactly once', async () => {
    const dir = gatewayStateDir();
    try {
      const c = startGateway(dir, 'hang-deliver-before');
      await c.waitFor((e) => e.ev === 'ready', 'ready');
      c.send({ id: 'm1', thread: 't1', text: 'answer me' });
      await c.waitFor((e) => e.ev === 'delivering', 'delivering');
      await kill9(c);
      assert.equal(deliveredTo(dir).length, 0);
      const d = await recoverAndSettle(dir, 1);
      assert.deepEqual(
        d.map((x) => x.text),
        ['done: alice: answer me'],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('repeats a reply sent but not yet marked with the same delivery id, so the thread sees it once', async () => {
    const dir = gatewayStateDir();
    try {
      const c = startGateway(dir, 'hang-deliver-after');
      await c.waitFor((e) => e.ev === 'ready', 'ready');
      c.send({ id: 'm1', thread: 't1', text: 'answer me' });
      const first = await c.waitFor((e) => e.ev === 'delivered', 'delivered');
      await kill9(c);
      const d = await recoverAndSettle(dir, 1);
      assert.equal(d.length, 1);
      assert.equal(d[0]!.id, first.id);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('recognises a message delivered again after the restart and does not run it twice', async () => {
    const dir = gatewayStateDir();
    try {
      const c = startGateway(dir, 'normal');
      await c.waitFor((e) => e.ev === 'ready', 'ready');
      c.send({ id: 'm1', thread: 't1', text: 'only once' });
      await c.waitFor((e) => e.ev === 'delivered', 'delivered');
      await kill9(c);
      const again = startGateway(dir, 'normal');
      await again.waitFor((e) => e.ev === 'ready', 'ready');
      again.send({ id: 'm1', thread: 't1', text: 'only once' });
      const stored = await again.waitFor((e) => e.ev === 'stored', 'stored');
      assert.equal(stored.duplicate, true);
      await kill9(again);
      assert.equal(deliveredTo(dir).length, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
