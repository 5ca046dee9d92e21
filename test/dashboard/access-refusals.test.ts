import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type DashboardFixture, dashboardFixture } from '../harness/dashboard-fixture.ts';
import { LiveExecutor } from '../harness/live-executor.ts';

const form = (body: Record<string, string>) => ({
  method: 'POST',
  redirect: 'manual' as const,
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(body).toString(),
});

async function csrfOf(url: string, init: RequestInit = {}): Promise<string> {
  const page = await (await fetch(url, init)).text();
  return /name="_csrf" value="([^"]+)"/.exec(page)![1]!;
}

describe('dashboard on loopback without login', () => {
  let f: DashboardFixture;
  before(async () => {
    f = await dashboardFixture({ executor: new LiveExecutor() });
  });
  after(() => f?.close());

  it('refuses a form without the CSRF token, and nothing is started', async () => {
    const r = await fetch(`${f.url}/repos/app/tasks`, form({ text: 'forged' }));
    assert.equal(r.status, 403);
    assert.match(await r.text(), /came from another site/);
    assert.equal((await f.store.listConversations({})).length, 0);
  });

  it('refuses a form posted from another site even with a valid token', async () => {
    const csrf = await csrfOf(`${f.url}/`);
    const init = form({ _csrf: csrf, text: 'cross-site' });
    const r = await fetch(`${f.url}/repos/app/tasks`, {
      ...init,
      headers: { ...init.headers, 'sec-fetch-site': 'cross-site' },
    });
    assert.equal(r.status, 403);
    assert.equal((await f.store.listConversations({})).length, 0);
  });

  it('accepts the same form with the token from its page', async () => {
    const csrf = await csrfOf(`${f.url}/`);
    const r = await fetch(`${f.url}/repos/app/tasks`, form({ _csrf: csrf, text: 'real' }));
    assert.equal(r.status, 303);
    assert.match(r.headers.get('location') ?? '', /^\/conversations\/c_/);
  });

  it('refuses API changes without the control token', async () => {
    const r = await fetch(`${f.url}/api/repos/app/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"text":"hi"}',
    });
    assert.equal(r.status, 401);
  });

  it('refuses to delete a conversation without the control token, and the conversation stays', async () => {
    const csrf = await csrfOf(`${f.url}/`);
    await fetch(`${f.url}/repos/app/tasks`, form({ _csrf: csrf, text: 'keep it' }));
    const [c] = await f.store.listConversations({});
    assert.ok(c);
    const r = await fetch(`${f.url}/api/conversations/${c.id}/delete`, { method: 'POST' });
    assert.equal(r.status, 401);
    assert.ok(await f.store.getConversation(c.id), 'not deleted');
  });

  it('answers only to the names it is known by (DNS rebinding)', async () => {
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${f.url}/`, { headers: { host: 'attacker.example:80' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 421);
  });

  it('sends a content security policy that forbids inline scripts and framing', async () => {
    const r = await fetch(`${f.url}/`);
    const csp = r.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
  });
});

describe('dashboard with a login', () => {
  let f: DashboardFixture;
  const token = 'bob-token-abcdefghijklmnop';
  before(async () => {
    f = await dashboardFixture({
      yaml: 'dashboard:\n  require_login: true\nrepos:\n  app:\n    git_url: /srv/app.git\n',
      tokens: { bob: token },
      executor: new LiveExecutor(),
    });
  });
  after(() => f?.close());

  for (const path of ['/', '/repos', '/conversations/c_x', '/tasks/t_x']) {
    it(`sends ${path} to the login page without a session`, async () => {
      const r = await fetch(`${f.url}${path}`, { redirect: 'manual' });
      assert.equal(r.status, 303);
      assert.match(r.headers.get('location') ?? '', /^\/login\?next=/);
    });
  }

  for (const path of ['/api/health', '/api/tasks', '/api/conversations', '/live?topic=overview']) {
    it(`refuses ${path} without a session or token`, async () => {
      const r = await fetch(`${f.url}${path}`);
      assert.equal(r.status, 401);
    });
  }

  it('lets scripts in with the control token', async () => {
    const r = await fetch(`${f.url}/api/health`, {
      headers: { authorization: `Bearer ${f.controlToken}` },
    });
    assert.equal(r.status, 200);
    const wrong = await fetch(`${f.url}/api/health`, { headers: { authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 401);
  });

  it('refuses a form whose CSRF token belongs to another session', async () => {
    const login = async () => {
      const r = await fetch(`${f.url}/login`, form({ token, next: '/' }));
      return /errand_session=([^;]+)/.exec(r.headers.get('set-cookie') ?? '')![1]!;
    };
    const [mine, theirs] = [await login(), await login()];
    const theirCsrf = await csrfOf(`${f.url}/`, {
      headers: { cookie: `errand_session=${theirs}` },
    });
    const init = form({ _csrf: theirCsrf, text: 'with the wrong token' });
    const r = await fetch(`${f.url}/repos/app/tasks`, {
      ...init,
      headers: { ...init.headers, cookie: `errand_session=${mine}` },
    });
    assert.equal(r.status, 403);
    assert.equal((await f.store.listConversations({})).length, 0);
  });

  it('never redirects to another site after login', async () => {
    const r = await fetch(`${f.url}/login`, form({ token, next: '//evil.example/' }));
    assert.equal(r.headers.get('location'), '/');
  });

  it('ends the session on logout', async () => {
    const r = await fetch(`${f.url}/login`, form({ token, next: '/' }));
    const session = /errand_session=([^;]+)/.exec(r.headers.get('set-cookie') ?? '')![1]!;
    const cookie = { cookie: `errand_session=${session}` };
    const csrf = await csrfOf(`${f.url}/`, { headers: cookie });
    const out = await fetch(`${f.url}/logout`, {
      ...form({ _csrf: csrf }),
      headers: { ...form({}).headers, ...cookie },
    });
    assert.equal(out.status, 303);
    const after = await fetch(`${f.url}/`, { headers: cookie, redirect: 'manual' });
    assert.equal(after.status, 303);
  });
});
