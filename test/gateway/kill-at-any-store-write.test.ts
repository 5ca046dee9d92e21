/**
 * Kills a real gateway process with SIGKILL right after each of its store writes in turn
 * (write 1, then a fresh run killed after write 2, …) until a run makes all its writes and
 * survives, restarting it normally on the same state after each kill. Whatever the write,
 * the thread must end as if nothing happened.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { type Delivery, TERMINAL_MESSAGE_STATES } from '../../src/domain/index.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import {
  deliveredTo,
  type GatewayProcess,
  gatewayStateDir,
  kill9,
  killLeftovers,
  startGateway,
} from '../harness/gateway-process.ts';

const ACKS = { CHILD_ACKS: '1' };
// A bound on the sweep: one message's life is about ten writes.
const MAX_WRITES = 60;

async function ready(c: GatewayProcess): Promise<GatewayProcess> {
  await c.waitFor((e) => e.ev === 'ready', 'ready');
  return c;
}

async function settled(c: GatewayProcess): Promise<void> {
  assert.equal(await c.settle(), 'settled', 'a normal run settles without crashing');
}

/**
 * Runs `step` in a gateway that kills itself after its `n`th store write, and returns a
 * normal gateway started on the state it left (recovered and settled), with the write the
 * kill came after; none when the first gateway made all its writes and settled.
 */
async function killedAfterWrite(
  dir: string,
  n: number,
  step: (c: GatewayProcess) => void,
): Promise<{ gateway: GatewayProcess; killedAt?: string }> {
  const c = startGateway(dir, 'normal', { ...ACKS, CRASH_AFTER_WRITE: String(n) });
  // Recovery writes before the gateway is ready, so the kill can come first.
  const started = await Promise.race([
    c.waitFor((e) => e.ev === 'ready', 'ready').then(() => true),
    c.exited.then(() => false),
  ]);
  if (started) step(c);
  const survived = started && (await c.settle()) === 'settled';
  let killedAt: string | undefined;
  if (survived) {
    await kill9(c);
  } else {
    const last = c.events.findLast((e) => e.ev === 'write');
    assert.equal(last?.n, n, 'the process killed itself at the write it was told');
    killedAt = String(last.method);
  }
  const gateway = await ready(startGateway(dir, 'normal', ACKS));
  await settled(gateway);
  return { gateway, killedAt };
}

/**
 * Runs `trial(n)` for n = 1, 2, … until a run makes all its writes (`trial` returns no kill
 * point); returns the write each earlier run was killed after. Stops at the first failure.
 */
async function sweep(
  t: TestContext,
  trial: (dir: string, n: number) => Promise<string | undefined>,
): Promise<string[]> {
  const killedAt: string[] = [];
  for (let n = 1; n <= MAX_WRITES; n++) {
    const dir = gatewayStateDir();
    let outcome: { killedAt?: string } | undefined;
    try {
      await t.test(`killed after write ${n}`, async () => {
        outcome = { killedAt: await trial(dir, n) };
      });
    } finally {
      await killLeftovers();
      rmSync(dir, { recursive: true, force: true });
    }
    if (!outcome) throw new Error(`the run killed after write ${n} failed (above)`);
    if (outcome.killedAt === undefined) {
      t.diagnostic(`killed after each of: ${killedAt.join(', ')}; run ${n} survived`);
      return killedAt;
    }
    killedAt.push(outcome.killedAt);
  }
  throw new Error(`a run made more than ${MAX_WRITES} writes`);
}

interface ThreadState {
  conversations: string[];
  messages: Array<{ externalId: string; state: string; conversationId?: string; taskId?: string }>;
  /** Deliveries in the store, each with the external id of the message it answers. */
  stored: Array<Delivery & { answers?: string }>;
  /** What reached the thread, one entry per delivery id. */
  thread: Delivery[];
}

async function threadState(dir: string): Promise<ThreadState> {
  const store = openSqliteStore(join(dir, 'state.db'));
  try {
    const messages = await store.listMessages({});
    const externalOf = new Map(messages.map((m) => [m.id, m.externalId]));
    const stored = (await store.listDeliveries({})).map((d) => ({
      ...d,
      answers: d.messageId && externalOf.get(d.messageId),
    }));
    assert.deepEqual(
      messages.filter((m) => !TERMINAL_MESSAGE_STATES.includes(m.state)).map((m) => m.state),
      [],
      'every message ended',
    );
    assert.deepEqual(
      stored.filter((d) => d.state !== 'sent').map((d) => [d.kind, d.state]),
      [],
      'every delivery was sent',
    );
    return {
      conversations: (await store.listConversations({})).map((c) => c.id),
      messages,
      stored,
      thread: deliveredTo(dir),
    };
  } finally {
    await store.close();
  }
}

/** The answer of each task (a reply, or the notice that a restart interrupted it). */
function answersOf(s: ThreadState, externalId: string): Delivery[] {
  return s.stored.filter(
    (d) => d.answers === externalId && (d.kind === 'reply' || d.kind === 'interrupted'),
  );
}

/** The one answer to a message: its reply, or the notice that a restart interrupted it. */
function oneAnswer(s: ThreadState, externalId: string, text: string): Delivery {
  const answers = answersOf(s, externalId);
  assert.equal(answers.length, 1, `one answer to ${externalId}`);
  if (answers[0]!.kind === 'reply') assert.equal(answers[0]!.text, `done: alice: ${text}`);
  return answers[0]!;
}

/** One conversation holds both messages; one ack; one answer per message; each sent once. */
function assertOneThread(
  s: ThreadState,
  first: { id: string; text: string },
  followUp: { id: string; text: string },
): void {
  assert.equal(s.conversations.length, 1, 'one conversation');
  assert.deepEqual(
    s.messages.map((m) => [m.externalId, m.conversationId]),
    [
      [first.id, s.conversations[0]],
      [followUp.id, s.conversations[0]],
    ],
    'the follow-up lands in the conversation the first message opened',
  );
  assert.deepEqual(
    s.stored.filter((d) => d.kind === 'ack').map((d) => d.answers),
    [first.id],
    'exactly one acknowledgement, for the message that opened the conversation',
  );
  const answers = [oneAnswer(s, first.id, first.text), oneAnswer(s, followUp.id, followUp.text)];
  assert.equal(s.stored.length, 3, 'nothing but the acknowledgement and the two answers');
  assert.deepEqual(
    s.thread.map((d) => d.id).sort(),
    [s.stored.find((d) => d.kind === 'ack')!.id, ...answers.map((d) => d.id)].sort(),
    'the thread got each delivery once',
  );
}

const OPEN = { id: 'm1', thread: 't1', text: 'open it' };
const FOLLOW_UP = { id: 'm2', thread: 't1', text: 'and the tests' };

/** Sends the follow-up to a recovered gateway, stops it once settled, reads the thread. */
async function followUpIn(gateway: GatewayProcess, dir: string): Promise<ThreadState> {
  try {
    gateway.send(FOLLOW_UP);
    await settled(gateway);
  } finally {
    await kill9(gateway);
  }
  const s = await threadState(dir);
  assert.equal(answersOf(s, FOLLOW_UP.id)[0]?.kind, 'reply', 'the follow-up ran after the restart');
  return s;
}

describe('a gateway killed with SIGKILL after any store write and started again', () => {
  it('a kill at any store write while a conversation opens and its task finishes leaves one conversation, one acknowledgement and one answer per message', async (t) => {
    const killedAt = await sweep(t, async (dir, n) => {
      const { gateway, killedAt } = await killedAfterWrite(dir, n, (c) => c.send(OPEN));
      assertOneThread(await followUpIn(gateway, dir), OPEN, FOLLOW_UP);
      return killedAt;
    });
    for (const write of [
      'insertMessage',
      'fileMessage',
      'updateTask',
      'finishTask',
      'markDelivery',
    ])
      assert.ok(killedAt.includes(write), `a run was killed after ${write}`);
  });

  it('a kill at any store write while a follow-up is filed and answered keeps it in its conversation, with no second acknowledgement', async (t) => {
    const killedAt = await sweep(t, async (dir, n) => {
      const first = await ready(startGateway(dir, 'normal', ACKS));
      first.send(OPEN);
      await settled(first);
      await kill9(first);
      const { gateway, killedAt } = await killedAfterWrite(dir, n, (c) => c.send(FOLLOW_UP));
      await kill9(gateway);
      const s = await threadState(dir);
      assertOneThread(s, OPEN, FOLLOW_UP);
      assert.equal(answersOf(s, OPEN.id)[0]!.kind, 'reply', 'the first task finished before');
      return killedAt;
    });
    for (const write of ['insertMessage', 'fileMessage', 'finishTask', 'markDelivery'])
      assert.ok(killedAt.includes(write), `a run was killed after ${write}`);
  });

  it('a kill at any store write while a restart recovers an interrupted task leaves one acknowledgement and one answer', async (t) => {
    const killedAt = await sweep(t, async (dir, n) => {
      // Left by a kill while the task ran and before its acknowledgement was sent.
      const first = await ready(startGateway(dir, 'hang-deliver-before', ACKS));
      first.send({ ...OPEN, text: 'hang on it' });
      await first.waitFor((e) => e.ev === 'task' && e.state === 'running', 'the task running');
      await first.waitFor((e) => e.ev === 'delivering', 'the acknowledgement on its way');
      await kill9(first);
      const { gateway, killedAt } = await killedAfterWrite(dir, n, () => undefined);
      const s = await followUpIn(gateway, dir);
      assertOneThread(s, { ...OPEN, text: 'hang on it' }, FOLLOW_UP);
      assert.equal(answersOf(s, OPEN.id)[0]!.kind, 'interrupted');
      return killedAt;
    });
    for (const write of ['finishTask', 'markDelivery'])
      assert.ok(killedAt.includes(write), `a run was killed after ${write}`);
  });

  it('a kill at any store write while a message is refused with a notice leaves it rejected, with one notice and no conversation', async (t) => {
    const killedAt = await sweep(t, async (dir, n) => {
      const { gateway, killedAt } = await killedAfterWrite(dir, n, (c) =>
        c.send({ id: 'big', thread: 't1', text: 'a huge mail', from: 'oversize' }),
      );
      await kill9(gateway);
      const s = await threadState(dir);
      assert.deepEqual(s.conversations, []);
      assert.deepEqual(
        s.messages.map((m) => [m.externalId, m.state]),
        [['big', 'rejected']],
      );
      assert.deepEqual(
        s.stored.map((d) => [d.kind, d.text, d.answers]),
        [['rejected', 'too big for errand', 'big']],
        'exactly one notice',
      );
      assert.deepEqual(
        s.thread.map((d) => d.id),
        s.stored.map((d) => d.id),
      );
      return killedAt;
    });
    for (const write of ['insertMessage', 'rejectMessage', 'markDelivery'])
      assert.ok(killedAt.includes(write), `a run was killed after ${write}`);
  });
});
