/**
 * The whole flow on real components: a DKIM-signed mail in a real Dovecot, a Slack DM
 * through the Bolt client and the emulator, and a task from the dashboard's API each make
 * the real Claude Code CLI, in a real podman sandbox behind the proxy, fix a bug, run the
 * repository's tests, commit, push a branch over HTTPS and open a pull request on a local
 * forge with a token the sandbox only ever held as a surrogate. A reply in the mail thread
 * resumes the session and pushes a second commit to the same branch.
 *
 * As a demo: bash scripts/node.sh --test --test-reporter=spec test/e2e/message-to-pull-request.test.ts
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import PostalMime from 'postal-mime';
import { type EndToEnd, FORGE_TOKEN, MODEL_KEY, startEndToEnd } from '../harness/end-to-end.ts';
import { eventually } from '../harness/gateway-fixture.ts';
import { buildMail, sign } from '../harness/signed-mail.ts';

let e: EndToEnd;
before(async () => {
  e = await startEndToEnd();
});
after(() => e?.close());

describe('from a message to a pull request', () => {
  let firstReply: Awaited<ReturnType<typeof PostalMime.parse>>;

  it('a signed mail becomes a pushed branch and a pull request, answered in its thread', async () => {
    const raw = await sign(
      await buildMail({
        from: 'Alice <alice@sender.test>',
        subject: 'Broken add',
        text: 'Please fix the add function; its test fails.',
        messageId: '<task-1@sender.test>',
      }),
      e.sender,
    );
    await e.imap.append(raw);
    const [ack, reply] = await e.smtp.waitFor(2, 240_000);
    const parsedAck = await PostalMime.parse(ack!.raw);
    assert.match(parsedAck.text ?? '', /Got it/);
    firstReply = await PostalMime.parse(reply!.raw);
    assert.equal(firstReply.inReplyTo, '<task-1@sender.test>');
    assert.match(firstReply.subject ?? '', /^Re: Broken add \[errand:[0-9a-f]{12}\]$/);
    assert.match(firstReply.text ?? '', /Pull request: https:\/\/forge\.test\/acme\/app\/pull\/1/);
    assert.match(firstReply.text ?? '', /-- \n\$\d+\.\d+ · /, 'the reply shows what it cost');
    assert.deepEqual(e.forge.pulls[0], {
      number: 1,
      repo: 'acme/app',
      title: 'Fix add',
      head: 'errand/fix-add',
      base: 'main',
      url: 'https://forge.test/acme/app/pull/1',
    });
    assert.deepEqual(e.branchLog('errand/fix-add').slice(0, 2), ['Fix add', 'init']);
    // The forge saw only the real token; the sandbox held a surrogate of the same shape.
    assert.ok(e.forge.gitPasswords.length > 0);
    assert.deepEqual([...new Set(e.forge.gitPasswords)], [FORGE_TOKEN]);
    assert.deepEqual([...new Set(e.forge.apiAuthorizations)], [`Bearer ${FORGE_TOKEN}`]);
    assert.deepEqual(
      [...new Set(e.model.requests.map((r) => r.headers['x-api-key']))],
      [MODEL_KEY],
    );
  });

  it('a reply in the thread resumes the session and pushes a second commit to the branch', async () => {
    const before = e.model.requests.length;
    const raw = await sign(
      await buildMail({
        from: 'alice@sender.test',
        subject: firstReply.subject,
        text: `Thanks! Please also update the changelog.\n\nOn Mon, errand wrote:\n> ${firstReply.text?.split('\n')[0]}\n`,
        inReplyTo: firstReply.messageId,
        references: `<task-1@sender.test> ${firstReply.messageId}`,
      }),
      e.sender,
    );
    await e.imap.append(raw);
    const sent = await e.smtp.waitFor(3, 240_000);
    const reply = await PostalMime.parse(sent[2]!.raw);
    assert.equal(reply.subject, firstReply.subject, 'the same thread');
    assert.ok((reply.references ?? '').includes(firstReply.messageId!), 'it references the reply');
    assert.match(reply.text ?? '', /Pushed a second commit to the same branch/);
    assert.deepEqual(e.branchLog('errand/fix-add').slice(0, 3), [
      'Update the changelog',
      'Fix add',
      'init',
    ]);
    const resumed = e.model.requests.slice(before).find((r) => (r.body.tools?.length ?? 0) > 0)!;
    assert.ok((resumed.body.messages?.length ?? 0) > 2, 'the model sees the earlier turns');
    const conversations = await e.store.listConversations({});
    assert.equal(conversations.filter((c) => c.channel === 'email').length, 1);
  });

  it('the same from the dashboard', async () => {
    const res = await fetch(`${e.dashboardUrl}/api/repos/app/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${e.controlToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'Please fix the sub function.' }),
    });
    assert.equal(res.status, 202);
    const reply = await eventually(
      async () =>
        (await e.store.listDeliveries({})).find((d) => d.channel === 'web' && d.kind === 'reply'),
      'the web reply',
      240_000,
    );
    assert.match(reply.text, /Pull request: https:\/\/forge\.test\/acme\/app\/pull\/2/);
    assert.deepEqual(e.branchLog('errand/fix-sub').slice(0, 1), ['Fix sub']);
  });

  it('the same from a Slack thread', async () => {
    const m = await e.slack.post({
      user: 'U1ALICE',
      channel: 'D1',
      text: 'Please fix the mul function.',
    });
    const [reply] = await e.slack.waitFor(
      () => (e.slack.repliesIn('D1', m.ts).length ? e.slack.repliesIn('D1', m.ts) : undefined),
      'the Slack reply',
      240_000,
    );
    assert.match(reply!.text, /Pull request: <https:\/\/forge\.test\/acme\/app\/pull\/3>/);
    assert.deepEqual(e.branchLog('errand/fix-mul').slice(0, 1), ['Fix mul']);
    assert.equal(e.forge.pulls.length, 3);
  });

  it('no real credential appears in anything errand stored', async () => {
    for (const task of await e.store.listTasks({})) {
      const events = JSON.stringify(await e.store.listEvents(task.id));
      assert.ok(!events.includes(FORGE_TOKEN), `task ${task.id} events hold the forge token`);
      assert.ok(!events.includes(MODEL_KEY), `task ${task.id} events hold the model key`);
    }
    const deliveries = JSON.stringify(await e.store.listDeliveries({}));
    assert.ok(!deliveries.includes(FORGE_TOKEN) && !deliveries.includes(MODEL_KEY));
  });
});
