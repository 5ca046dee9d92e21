/**
 * The rule docs/dashboard.md states until operator and user roles refine it: whoever is
 * logged in may do what any other logged-in user may. These tests hold the rule as it is,
 * so a change to it is a decision, not an accident.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type DashboardFixture, dashboardFixture } from '../harness/dashboard-fixture.ts';
import { eventually } from '../harness/gateway-fixture.ts';

const TOKENS = { alice: 'alice-token-abcdefghijklmnop', bob: 'bob-token-abcdefghijklmnop' };
const YAML = `dashboard:
  require_login: true
repos:
  app:
    git_url: /srv/app.git
  other:
    git_url: /srv/other.git
`;

describe('any logged-in user (the documented rule until roles arrive)', () => {
  let f: DashboardFixture;
  const as: Record<string, { cookie: string; csrf: string }> = {};

  const form = (who: string, body: Record<string, string>) => ({
    method: 'POST',
    redirect: 'manual' as const,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      cookie: as[who]!.cookie,
    },
    body: new URLSearchParams({ ...body, _csrf: as[who]!.csrf }).toString(),
  });

  before(async () => {
    f = await dashboardFixture({ yaml: YAML, tokens: TOKENS });
    for (const [user, token] of Object.entries(TOKENS)) {
      const r = await fetch(`${f.url}/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token, next: '/' }).toString(),
      });
      const cookie = `errand_session=${/errand_session=([^;]+)/.exec(r.headers.get('set-cookie') ?? '')![1]}`;
      const page = await (await fetch(`${f.url}/`, { headers: { cookie } })).text();
      as[user] = { cookie, csrf: /name="_csrf" value="([^"]+)"/.exec(page)![1]! };
    }
  });
  after(() => f?.close());

  it("may stop another user's task: bob stops the task alice started", async () => {
    const started = await fetch(`${f.url}/repos/app/tasks`, form('alice', { text: 'hang here' }));
    assert.equal(started.status, 303);
    const [task] = await eventually(async () => {
      const t = await f.store.listTasks({ states: ['running'] });
      return t.length ? t : undefined;
    }, "alice's task to run");
    const first = (await f.store.listMessages({ taskId: task!.id }))[0];
    assert.equal(first?.sender.id, 'alice');

    const stop = await fetch(`${f.url}/tasks/${task!.id}/stop`, form('bob', {}));
    assert.equal(stop.status, 303);
    const stopped = await eventually(async () => {
      const t = await f.store.getTask(task!.id);
      return t?.state === 'stopped' ? t : undefined;
    }, 'the task to stop');
    assert.equal(stopped.outcome, 'stopped by bob');
  });

  it("may read another user's conversation and its network log", async () => {
    const [conversation] = await f.store.listConversations({ repoId: 'app' });
    const page = await fetch(`${f.url}/conversations/${conversation!.id}`, {
      headers: { cookie: as.bob!.cookie },
    });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /hang here/);
    const network = await fetch(`${f.url}/api/conversations/${conversation!.id}/network`, {
      headers: { cookie: as.bob!.cookie },
    });
    assert.equal(network.status, 200);
  });

  it('may start a task on any repository with a web channel', async () => {
    const r = await fetch(`${f.url}/repos/other/tasks`, form('bob', { text: 'on the other one' }));
    assert.equal(r.status, 303);
    await eventually(
      async () => (await f.store.listConversations({ repoId: 'other' })).length === 1,
      'a conversation in the other repository',
    );
  });
});
