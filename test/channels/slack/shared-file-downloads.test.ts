import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { TaskRun } from '../../../src/gateway/ports.ts';
import { eventually } from '../../harness/gateway-fixture.ts';
import { ScriptedExecutor } from '../../harness/scripted-executor.ts';
import { BOT_TOKEN } from '../../harness/slack-emulator.ts';
import { type SlackFixture, slackFixture } from '../../harness/slack-fixture.ts';

/**
 * Files shared with a message are fetched with the bot token. Only for a sender errand
 * takes tasks from, only from the Slack file host (redirects included), streamed and cut
 * at a limit per file and per message; nothing is kept of what is refused or cut.
 */
const KiB = 1024;
const MiB = 1024 * KiB;
let f: SlackFixture;
const executor = new ScriptedExecutor({ hang: false });
/** Another host on loopback; records what reaches it, with which credentials. */
let elsewhere: Server;
const reachedElsewhere: Array<{ url: string; authorization?: string }> = [];
let elsewhereUrl = '';

before(async () => {
  elsewhere = createServer((req, res) => {
    reachedElsewhere.push({ url: req.url ?? '', authorization: req.headers.authorization });
    res.writeHead(200).end('from elsewhere');
  });
  await new Promise<void>((r) => elsewhere.listen(0, '127.0.0.1', r));
  elsewhereUrl = `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}`;
  f = await slackFixture({
    executor,
    channelOptions: { maxFileBytes: 1 * MiB, maxMessageFileBytes: 1.5 * MiB },
  });
  f.slack.addUser({ id: 'U1ALICE', name: 'alice' });
  f.slack.addUser({ id: 'U5GUEST', name: 'guest', is_restricted: true });
  f.slack.addUser({ id: 'U7BOT', name: 'otherbot', is_bot: true });
  f.slack.addUser({ id: 'U9OTHER', name: 'outsider', team_id: 'T9OTHER' });
});
after(async () => {
  await f?.close();
  await new Promise((r) => elsewhere?.close(r));
});

const filesDir = (channel: string, ts: string) =>
  join(f.dir, 'attachments', 'app', `${channel}-${ts}`);
const requested = (id: string) => f.slack.fileRequests.filter((r) => r.id === id);

async function runFor(channel: string, ts: string): Promise<TaskRun> {
  return await eventually(
    () => executor.runs.find((r) => r.conversation.threadKey === `${channel}:${ts}`),
    `the task of ${channel}:${ts}`,
  );
}

for (const [who, user] of [
  ['a guest', 'U5GUEST'],
  ['a bot user', 'U7BOT'],
  ['a member of another workspace', 'U9OTHER'],
] as const) {
  test(`${who}'s shared file is never downloaded, and nothing of it is on disk`, async () => {
    const m = await f.slack.post({
      user,
      channel: 'D9',
      text: 'here is a file',
      files: [{ name: 'payload.txt', content: 'attacker data' }],
    });
    const stored = await eventually(async () => {
      const all = await f.store.listMessages({ states: ['rejected'] });
      return all.find((x) => x.externalId === `D9:${m.ts}`);
    }, 'the message refused');
    const [file] = m.files!;
    assert.equal(requested(file!.id).length, 0, 'the file was requested');
    assert.equal(existsSync(filesDir('D9', m.ts)), false, 'a folder for its files exists');
    assert.deepEqual(stored.attachments, []);
  });
}

test('an authorized member’s shared file arrives in the task', async () => {
  const m = await f.slack.post({
    user: 'U1ALICE',
    channel: 'D1',
    text: 'the notes',
    files: [{ name: 'notes.txt', content: 'some notes' }],
  });
  const run = await runFor('D1', m.ts);
  const [a] = run.parts[0]!.attachments;
  assert.equal(readFileSync(a!.path, 'utf8'), 'some notes');
  assert.deepEqual(
    requested(m.files![0]!.id).map((r) => r.token),
    [BOT_TOKEN],
  );
});

test('an oversized file is cut at the limit: errand stops reading it and keeps none of it', async () => {
  // Slack says it is small; the body goes on for 64 MiB, sent only as fast as it is read.
  const m = await f.slack.post({
    user: 'U1ALICE',
    channel: 'D2',
    text: 'a big one',
    files: [{ name: 'big.bin', size: 10 * KiB, streamBytes: 64 * MiB }],
  });
  const run = await runFor('D2', m.ts);
  const served = f.slack.files.get(m.files![0]!.id)!;
  await eventually(() => served.cutByClient !== undefined, 'the download connection closed');
  assert.equal(served.cutByClient, true, 'errand read the whole body');
  assert.ok(served.sent! < 32 * MiB, `${served.sent} bytes were sent before errand hung up`);
  assert.deepEqual(run.parts[0]!.attachments, []);
  assert.equal(existsSync(join(filesDir('D2', m.ts), 'big.bin')), false, 'a part of it is kept');
  assert.match(run.parts[0]!.text, /\(Not attached: big\.bin \(over the 1 MB limit of a file\)\)/);
});

test('a file Slack states is over the limit is not requested at all', async () => {
  const m = await f.slack.post({
    user: 'U1ALICE',
    channel: 'D3',
    text: 'stated big',
    files: [{ name: 'huge.iso', content: 'x', size: 5 * MiB }],
  });
  const run = await runFor('D3', m.ts);
  assert.equal(requested(m.files![0]!.id).length, 0);
  assert.match(run.parts[0]!.text, /huge\.iso \(over the 1 MB limit of a file\)/);
});

test('a message’s files are taken up to the limit of a message, the rest not requested', async () => {
  const part = 'p'.repeat(600 * KiB);
  const m = await f.slack.post({
    user: 'U1ALICE',
    channel: 'D4',
    text: 'three parts',
    files: ['a.txt', 'b.txt', 'c.txt'].map((name) => ({ name, content: part })),
  });
  const run = await runFor('D4', m.ts);
  assert.deepEqual(
    run.parts[0]!.attachments.map((a) => a.name),
    ['a.txt', 'b.txt'],
  );
  assert.equal(requested(m.files![2]!.id).length, 0, 'the third file was requested');
  assert.match(run.parts[0]!.text, /c\.txt \(over the 1\.5 MB limit of a message's files\)/);
});

test('a redirect of a shared file to another host is not followed, with the token or without', async () => {
  const m = await f.slack.post({
    user: 'U1ALICE',
    channel: 'D5',
    text: 'moved file',
    files: [{ name: 'moved.txt', redirectTo: `${elsewhereUrl}/steal?f=moved` }],
  });
  const run = await runFor('D5', m.ts);
  assert.deepEqual(reachedElsewhere, [], 'the other host was reached');
  assert.deepEqual(run.parts[0]!.attachments, []);
  assert.match(
    run.parts[0]!.text,
    /moved\.txt \(Slack sent it to 127\.0\.0\.1:\d+, which is not a Slack file host\)/,
  );
});

test('a redirect within the Slack file host is followed, with the token', async () => {
  const target = f.slack.addFile({ name: 'real.txt', content: 'moved here' });
  const m = await f.slack.post({
    user: 'U1ALICE',
    channel: 'D6',
    text: 'moved within',
    files: [{ name: 'link.txt', redirectTo: target.url_private_download }],
  });
  const run = await runFor('D6', m.ts);
  const [a] = run.parts[0]!.attachments;
  assert.equal(readFileSync(a!.path, 'utf8'), 'moved here');
  assert.deepEqual(
    requested(target.id).map((r) => r.token),
    [BOT_TOKEN],
  );
});

test('a file offered by another host is not requested with the token', async () => {
  const ts = f.slack.nextTs();
  await f.slack.send({
    type: 'message',
    subtype: 'file_share',
    channel: 'D7',
    channel_type: 'im',
    user: 'U1ALICE',
    text: 'from elsewhere',
    ts,
    files: [{ id: 'FELSE', name: 'else.txt', url_private_download: `${elsewhereUrl}/else.txt` }],
  });
  const run = await runFor('D7', ts);
  assert.deepEqual(reachedElsewhere, [], 'the other host was reached');
  assert.match(run.parts[0]!.text, /else\.txt \(not offered by a Slack file host\)/);
});

test('a message refused when the gateway authorizes it leaves no files behind', async () => {
  // Stored while the sender passed, refused later (the rules changed, errand restarted).
  const ts = f.slack.nextTs();
  const dir = filesDir('D8', ts);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'kept.txt'), 'data of a refused message');
  const verdict = await f.channel.authorize({
    id: 'm_test',
    state: 'received',
    repoId: 'app',
    channel: 'slack',
    externalId: `D8:${ts}`,
    threadKeys: [`D8:${ts}`],
    ownThreadKey: `D8:${ts}`,
    sender: { id: 'U5GUEST' },
    text: 'hello',
    attachments: [{ name: 'kept.txt', path: join(dir, 'kept.txt'), size: 25 }],
    receivedAt: Date.now(),
    meta: { channel: 'D8', ts, threadTs: ts, team: 'T0TEAM' },
  });
  assert.equal(verdict.ok, false);
  assert.equal(existsSync(dir), false, 'the files of the refused message are kept');
});
