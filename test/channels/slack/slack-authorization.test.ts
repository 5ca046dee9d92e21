import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LiveExecutor } from '../../harness/live-executor.ts';
import { type SlackFixture, slackFixture } from '../../harness/slack-fixture.ts';

/**
 * Who may use the bot, through the real Bolt client and the emulator: refused people get
 * no agent, no reply and no reaction; their messages end `rejected` with the reason.
 */
let f: SlackFixture;
const executor = new LiveExecutor();
before(async () => {
  f = await slackFixture({
    executor,
    authorized: '        user_groups: [S0OPS]\n        users: [U1ALICE]\n',
    slackExtra: '      channels: [C0ALLOWED]\n',
  });
  const s = f.slack;
  s.addUser({ id: 'U1ALICE', name: 'alice' });
  s.addUser({ id: 'U3OPS', name: 'olga' });
  s.addUser({ id: 'U4EVE', name: 'eve' });
  s.addUser({ id: 'U5GUEST', name: 'guest', is_restricted: true });
  s.addUser({ id: 'U6SINGLE', name: 'single', is_ultra_restricted: true });
  s.addUser({ id: 'U7BOT', name: 'otherbot', is_bot: true });
  s.addUser({ id: 'U8GONE', name: 'gone', deleted: true });
  s.addUser({ id: 'U9OTHER', name: 'outsider', team_id: 'T9OTHER' });
  s.usergroups.set('S0OPS', ['U3OPS', 'U5GUEST']);
});
after(() => f?.close());

const cases: Array<[string, string, string, boolean, RegExp?]> = [
  ['a listed user is answered', 'U1ALICE', 'D1', true],
  ['a member of a listed user group is answered', 'U3OPS', 'D2', true],
  ['an unlisted member is refused', 'U4EVE', 'D3', false, /not authorized/],
  ['a guest is refused even in an authorized group', 'U5GUEST', 'D4', false, /guest/],
  ['a single-channel guest is refused', 'U6SINGLE', 'D5', false, /guest/],
  ['another bot is refused', 'U7BOT', 'D6', false, /bot/],
  ['a deactivated user is refused', 'U8GONE', 'D7', false, /deactivated/],
  ['a user of another workspace is refused', 'U9OTHER', 'D8', false, /another workspace/],
  [
    'a listed user in a channel not in the list is refused',
    'U1ALICE',
    'C0OTHER',
    false,
    /slack\.channels/,
  ],
];

for (const [name, user, channel, ok, reason] of cases) {
  test(name, async () => {
    const text = channel.startsWith('C') ? '<@U0BOT> do it' : 'do it';
    const m = await f.slack.post({ user, channel, text });
    const message = await waitForState(`${channel}:${m.ts}`);
    if (ok) {
      await f.slack.waitFor(() => f.slack.repliesIn(channel, m.ts).length > 0, 'the reply');
      assert.equal(message.state === 'queued' || message.state === 'answered', true);
      return;
    }
    assert.equal(message.state, 'rejected');
    assert.match(message.stateReason ?? '', reason!);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(f.slack.repliesIn(channel, m.ts).length, 0, 'no reply');
    assert.equal(f.slack.reactions.filter((r) => r.ts === m.ts).length, 0, 'no reaction');
  });
}

test('the bot never answers its own messages', async () => {
  const runs = executor.runs.length;
  await f.slack.send({
    type: 'message',
    channel: 'D1',
    user: 'U0BOT',
    bot_id: 'B0BOT',
    text: 'echo',
    ts: f.slack.nextTs(),
  });
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(executor.runs.length, runs);
});

async function waitForState(externalId: string) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const all = await f.store.listMessages({ states: ['rejected', 'queued', 'answered'] });
    const m = all.find((x) => x.externalId === externalId);
    if (m) return m;
    if (Date.now() > deadline) throw new Error(`message ${externalId} was not settled`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
