/**
 * A task page in real Chromium while a fully tricked agent writes to it: plan statuses
 * that try to break out of their attribute, text that imitates the page's own elements,
 * and bare carriage returns that try to add fields to the live stream.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { browserMissing, launchBrowser } from '../harness/browser.ts';
import { type DashboardFixture, dashboardFixture } from '../harness/dashboard-fixture.ts';
import { eventually } from '../harness/gateway-fixture.ts';
import { PuppetExecutor } from '../harness/puppet-executor.ts';

const skip = browserMissing();

/**
 * The three statuses there are, then ones that try to leave `class="…"`, add classes, or
 * split the live stream.
 */
const STATUSES = [
  'completed',
  'in_progress',
  'pending',
  'completed" id="timeline',
  "in_progress' hidden id='plan",
  'pending"><div id="timeline" hidden>',
  'completed in_progress running',
  'completed\r\revent: state\rdata: done\r\r',
  '__proto__',
];
const IMPOSTOR = '<div id="timeline" hidden>swallows later events</div>';
const SPLITTER =
  'out\r\revent: changed\rdata: 1\r\revent: state\rdata: done\r\rid: 999999\rretry: 86400000\r';

/** The agent's events: a hostile plan, text and a tool result. */
function hostileEvents(round: string): Array<[string, unknown]> {
  return [
    [
      'plan',
      {
        items: STATUSES.map((status, i) => ({
          content: `${round} step ${i} ${IMPOSTOR}`,
          status,
        })),
      },
    ],
    [
      'claude.assistant',
      { message: { content: [{ type: 'text', text: `${round}: ${IMPOSTOR}` }] } },
    ],
    [
      'claude.user',
      { message: { content: [{ type: 'tool_result', tool_use_id: 'tu', content: SPLITTER }] } },
    ],
  ];
}

// Page-side code, as strings: the tests are type-checked without the DOM library.
const COUNT_REFRESHES = `
  window.fragmentFetches = 0;
  const realFetch = window.fetch;
  window.fetch = function (input, init) {
    if (init && init.headers && init.headers['x-fragment']) window.fragmentFetches++;
    return realFetch.apply(this, arguments);
  };`;
const MARK_FIRST_LOAD = `
  window.firstLoad = true;
  window.loadedTimeline = document.querySelector('main > #timeline');`;
const WHAT_THE_PAGE_HOLDS = `(() => {
  const timeline = document.querySelector('main > #timeline');
  return {
    firstLoad: window.firstLoad === true,
    sameTimeline: timeline !== null && timeline === window.loadedTimeline,
    fragmentFetches: window.fragmentFetches,
    ids: [...document.querySelectorAll('[id]')].map((e) => e.id),
    hidden: document.querySelectorAll('main [hidden]').length,
    seqs: [...(timeline ? timeline.children : [])].map((e) => e.getAttribute('data-seq')),
    planItems: [...document.querySelectorAll('main > #plan li')].map((li) => ({
      attributes: li.getAttributeNames(),
      className: li.className,
      text: li.textContent,
    })),
    timelineText: timeline ? timeline.innerText : '',
  };
})()`;

interface PageState {
  firstLoad: boolean;
  sameTimeline: boolean;
  fragmentFetches: number;
  ids: string[];
  hidden: number;
  seqs: Array<string | null>;
  planItems: Array<{ attributes: string[]; className: string; text: string }>;
  timelineText: string;
}

describe('a task page in Chromium, written to by a hostile agent', { skip }, () => {
  let browser: Browser;
  let f: DashboardFixture;
  const executor = new PuppetExecutor();
  before(async () => {
    [browser, f] = await Promise.all([launchBrowser(), dashboardFixture({ executor })]);
  });
  after(async () => {
    await browser?.close();
    await f?.close();
  });

  it('keeps plan statuses, impostor elements and stream splitting from steering the live task page', async () => {
    const res = await fetch(`${f.url}/api/repos/app/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${f.controlToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'take over the page' }),
    });
    assert.equal(res.status, 202);
    const task = await eventually(
      async () => (await f.store.listTasks({ states: ['running'] }))[0],
      'the task to run',
    );
    // Rendered by the server with the page...
    for (const [kind, data] of hostileEvents('before')) await executor.emit(task.id, kind, data);

    const page = await browser.newPage();
    // Counts the page's content refreshes, which an injected `changed` would start.
    await page.addInitScript(COUNT_REFRESHES);
    await page.clock.install();
    await page.goto(`${f.url}/tasks/${task.id}`);
    await page.evaluate(MARK_FIRST_LOAD);
    const liveAtLoad = await f.store.listEvents(task.id);
    await page.locator(`main > #timeline [data-seq="${liveAtLoad.at(-1)!.seq}"]`).waitFor();

    // ...and sent live over the stream.
    for (const [kind, data] of hostileEvents('live')) await executor.emit(task.id, kind, data);
    await executor.emit(task.id, 'claude.assistant', {
      message: { content: [{ type: 'text', text: 'the last event' }] },
    });
    await page
      .locator('main > #timeline .ev', { hasText: 'the last event' })
      .waitFor({ timeout: 10_000 });
    // Fires any refresh a `changed` event would have scheduled (400 ms later).
    await page.clock.runFor(2000);

    const seen = (await page.evaluate(WHAT_THE_PAGE_HOLDS)) as PageState;
    const stored = await f.store.listEvents(task.id);

    assert.equal(seen.firstLoad, true, 'the page was not reloaded (an injected `state`)');
    assert.equal(seen.fragmentFetches, 0, 'nor refreshed (an injected `changed`)');
    assert.equal(seen.sameTimeline, true, 'the timeline is the one the page loaded with');
    assert.deepEqual(
      seen.seqs,
      stored.map((e) => String(e.seq)),
      'every event is in the real timeline, once, in order',
    );
    const ours = /^(main|plan|timeline|task-state|ev-\d+)$/;
    assert.deepEqual(
      seen.ids.filter((id) => !ours.test(id)),
      [],
      'no id but the page’s own',
    );
    assert.equal(new Set(seen.ids).size, seen.ids.length, 'no id twice');
    assert.equal(seen.hidden, 0, 'no hidden element slipped in');
    assert.deepEqual(
      seen.planItems.map((i) => [i.attributes, i.className]),
      [
        [['class'], 'completed'],
        [['class'], 'in_progress'],
        ...Array(STATUSES.length - 2).fill([['class'], 'pending']),
      ],
      'a status is one of pending, in_progress, completed; anything else shows as pending',
    );
    assert.match(seen.planItems[0]!.text, /live step 0 <div id="timeline" hidden>/);
    assert.match(seen.timelineText, /live: <div id="timeline" hidden>swallows later events/);
    assert.match(seen.timelineText, /retry: 86400000/, 'the split text shows as text');
    await page.close();
    await f.gateway.stop(task.id, 'test');
  });
});
