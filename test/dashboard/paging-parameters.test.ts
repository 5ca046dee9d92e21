import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type DashboardFixture, dashboardFixture } from '../harness/dashboard-fixture.ts';
import { eventually } from '../harness/gateway-fixture.ts';
import { ScriptedExecutor } from '../harness/scripted-executor.ts';

/** Values that once meant "everything" (-1), a default, or nothing in particular. */
const NOT_IN_RANGE = ['-1', '1.5', '1e3', 'abc', '0x10', ' 5', '99999999999999999'];

let f: DashboardFixture;
let taskId: string;
before(async () => {
  f = await dashboardFixture({ executor: new ScriptedExecutor({ hang: false }) });
  for (const text of ['one', 'two', 'three']) {
    const r = await fetch(`${f.url}/api/repos/app/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${f.controlToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text }),
    });
    assert.equal(r.status, 202);
  }
  const tasks = await eventually(async () => {
    const t = await f.store.listTasks({ states: ['done'] });
    return t.length === 3 ? t : undefined;
  }, 'three finished tasks');
  taskId = tasks[0]!.id;
});
after(() => f?.close());

/** Each list route with its paging parameters and the range each accepts. */
const ROUTES: Array<{
  route: string;
  url: (v: string) => string;
  headers?: (v: string) => Record<string, string>;
  parameter: string;
  range: string;
  bad: string[];
}> = [
  {
    route: 'GET /api/conversations',
    url: (v) => `/api/conversations?limit=${encodeURIComponent(v)}`,
    parameter: 'limit',
    range: 'from 1 to 1000',
    bad: [...NOT_IN_RANGE, '0', '1001'],
  },
  {
    route: 'GET /api/tasks/ID/events',
    url: (v) => `/api/tasks/${taskId}/events?limit=${encodeURIComponent(v)}`,
    parameter: 'limit',
    range: 'from 1 to 1000',
    bad: [...NOT_IN_RANGE, '0', '1001'],
  },
  {
    route: 'GET /api/tasks/ID/events',
    url: (v) => `/api/tasks/${taskId}/events?after=${encodeURIComponent(v)}`,
    parameter: 'after',
    range: `from 0 to ${Number.MAX_SAFE_INTEGER}`,
    bad: NOT_IN_RANGE,
  },
  {
    route: 'GET /live',
    url: (v) => `/live?topic=overview&after=${encodeURIComponent(v)}`,
    parameter: 'after',
    range: `from 0 to ${Number.MAX_SAFE_INTEGER}`,
    bad: NOT_IN_RANGE,
  },
  {
    route: 'GET /live',
    url: () => '/live?topic=overview',
    headers: (v) => ({ 'last-event-id': v }),
    parameter: 'Last-Event-ID',
    range: `from 0 to ${Number.MAX_SAFE_INTEGER}`,
    bad: NOT_IN_RANGE.filter((v) => v.trim() === v),
  },
];

describe('paging parameters out of range are refused, not read as "everything"', () => {
  for (const r of ROUTES) {
    it(`${r.route} refuses ${r.parameter} outside ${r.range} with a 400 naming it`, async () => {
      for (const v of r.bad) {
        const res = await fetch(`${f.url}${r.url(v)}`, { headers: r.headers?.(v) });
        assert.equal(res.status, 400, `${r.parameter}=${JSON.stringify(v)}`);
        const body = (await res.json()) as { error: string; parameter: string; message: string };
        assert.equal(body.error, 'bad_request');
        assert.ok(!('conversations' in body) && !('events' in body), 'no list comes with it');
        assert.equal(body.parameter, r.parameter);
        assert.match(
          body.message,
          new RegExp(`^${r.parameter} must be a whole number ${r.range}$`),
        );
      }
    });
  }
});

describe('paging parameters in range page as they say (the neighbours)', () => {
  it('GET /api/conversations returns at most limit conversations, and 200 by default', async () => {
    const two = (await (await fetch(`${f.url}/api/conversations?limit=2`)).json()) as {
      conversations: unknown[];
    };
    assert.equal(two.conversations.length, 2);
    const all = (await (await fetch(`${f.url}/api/conversations`)).json()) as {
      conversations: unknown[];
    };
    assert.equal(all.conversations.length, 3);
  });

  it('GET /api/tasks/ID/events pages with limit and after', async () => {
    const page = async (q: string) =>
      (await (await fetch(`${f.url}/api/tasks/${taskId}/events?${q}`)).json()) as {
        events: Array<{ seq: number }>;
        next: number | null;
      };
    const first = await page('limit=1');
    assert.equal(first.events.length, 1);
    assert.equal(first.next, first.events[0]!.seq);
    const rest = await page(`after=${first.next}&limit=1000`);
    assert.ok(rest.events.length > 0);
    assert.ok(rest.events.every((e) => e.seq > first.next!));
    assert.equal(rest.next, null);
  });

  it('GET /live opens with after and Last-Event-ID in range', async () => {
    for (const headers of [{}, { 'last-event-id': '3' }]) {
      const controller = new AbortController();
      const res = await fetch(`${f.url}/live?topic=overview&after=0`, {
        headers,
        signal: controller.signal,
      });
      assert.equal(res.status, 200);
      controller.abort();
    }
  });
});
