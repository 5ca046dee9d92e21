/**
 * What a live stream may cost errand while an agent writes faster than a page reads: a
 * page left open on a laptop gone to sleep reads nothing for hours, and a page far behind
 * asks for a long task's whole history. Neither may hold errand's memory with what the
 * agent wrote, and a page that does read still gets every event, once, in order.
 */
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { MAX_BACKLOG_EVENTS } from '../../src/dashboard/live.ts';
import type { Task } from '../../src/domain/index.ts';
import { browserMissing, launchBrowser } from '../harness/browser.ts';
import { type DashboardFixture, dashboardFixture } from '../harness/dashboard-fixture.ts';
import { eventually } from '../harness/gateway-fixture.ts';
import { PuppetExecutor } from '../harness/puppet-executor.ts';

const UNSENT = 256 * 1024;
const EVENT_TEXT = 'x'.repeat(50_000);

async function runningTask(f: DashboardFixture): Promise<Task> {
  const res = await fetch(`${f.url}/api/repos/app/tasks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${f.controlToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ text: 'write a lot' }),
  });
  assert.equal(res.status, 202);
  return await eventually(
    async () => (await f.store.listTasks({ states: ['running'] }))[0],
    'the task to run',
  );
}

/** The agent writes `n` text events of 50 KB each. */
async function flood(executor: PuppetExecutor, task: Task, n: number, from = 0): Promise<void> {
  for (let i = from; i < from + n; i++) {
    await executor.emit(task.id, 'claude.assistant', {
      message: { content: [{ type: 'text', text: `event ${i} ${EVENT_TEXT}` }] },
    });
  }
}

describe('a live stream whose client reads nothing', () => {
  let f: DashboardFixture;
  const executor = new PuppetExecutor();
  before(async () => {
    f = await dashboardFixture({ executor, limits: { maxLiveUnsentBytes: UNSENT } });
  });
  after(() => f?.close());

  it('ends once it holds maxLiveUnsentBytes: errand queues no more of what the agent writes', async () => {
    const task = await runningTask(f);
    const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) =>
      get(`${f.url}/live?topic=task:${task.id}`, resolve).on('error', reject),
    );
    assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
    res.pause();
    // 40 MB, far more than the socket buffers of loopback hold.
    const written = 800 * EVENT_TEXT.length;
    await flood(executor, task, 800);
    // Read at last: until the stream ends, or it has carried half of what was written.
    let received = 0;
    await new Promise<void>((resolve) => {
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received >= written / 2) resolve();
      });
      res.on('end', resolve);
      res.resume();
    });
    res.destroy();
    assert.ok(
      received < written / 2,
      `the stream carried ${received} of the ${written} bytes the agent wrote`,
    );
    await f.gateway.stop(task.id, 'test');
  });
});

describe('a task page in Chromium that reads on', { skip: browserMissing() }, () => {
  let f: DashboardFixture;
  let browser: Browser;
  const executor = new PuppetExecutor();
  before(async () => {
    [browser, f] = await Promise.all([
      launchBrowser(),
      // Room for a few events: a page behind by more catches up in turns of this.
      dashboardFixture({ executor, limits: { maxLiveUnsentBytes: 1024 * 1024 } }),
    ]);
  });
  after(async () => {
    await browser?.close();
    await f?.close();
  });

  it('gets every event of an agent writing faster than it reads, once each, in order', async () => {
    const task = await runningTask(f);
    const page = await browser.newPage();
    await page.goto(`${f.url}/tasks/${task.id}`);
    await page.locator('main > #timeline').waitFor({ state: 'attached' });
    await flood(executor, task, 80);
    const stored = (await f.store.listEvents(task.id)).map((e) => String(e.seq));
    await page
      .locator(`main > #timeline > .ev[data-seq="${stored.at(-1)}"]`)
      .waitFor({ state: 'attached', timeout: 60_000 });
    const seqs = await page.evaluate(
      `[...document.querySelectorAll('main > #timeline > .ev')].map((e) => e.getAttribute('data-seq'))`,
    );
    assert.deepEqual(seqs, stored, 'every event in the timeline, once, in order');
    await page.close();
    await f.gateway.stop(task.id, 'test');
  });
});

describe('a task stream opened far behind', () => {
  let f: DashboardFixture;
  const executor = new PuppetExecutor();
  before(async () => {
    f = await dashboardFixture({ executor });
  });
  after(() => f?.close());

  /** The ids of a stream's frames, up to its end. */
  async function framesUntilEnd(url: string, lastEventId?: string) {
    const res = await fetch(url, {
      headers: lastEventId ? { 'last-event-id': lastEventId } : {},
      // A stream that does not end is the failure.
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    return [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
  }

  it(`gets its events in turns of ${MAX_BACKLOG_EVENTS}, each ending with the last one's id`, async () => {
    const task = await runningTask(f);
    for (let i = 0; i < MAX_BACKLOG_EVENTS * 2 + 10; i++) {
      await executor.emit(task.id, 'claude.assistant', {
        message: { content: [{ type: 'text', text: `event ${i}` }] },
      });
    }
    const all = (await f.store.listEvents(task.id)).map((e) => e.seq);
    const url = `${f.url}/live?topic=task:${task.id}`;
    const first = await framesUntilEnd(url);
    // Each event's id, then the last one's again: the page's resume point.
    assert.deepEqual(first, [...all.slice(0, MAX_BACKLOG_EVENTS), all[MAX_BACKLOG_EVENTS - 1]!]);
    const second = await framesUntilEnd(url, String(first.at(-1)));
    assert.deepEqual(second, [
      ...all.slice(MAX_BACKLOG_EVENTS, MAX_BACKLOG_EVENTS * 2),
      all[MAX_BACKLOG_EVENTS * 2 - 1]!,
    ]);
    // The rest fits: that stream stays open for what comes next.
    const controller = new AbortController();
    const third = await fetch(url, {
      headers: { 'last-event-id': String(second.at(-1)) },
      signal: controller.signal,
    });
    const reader = third.body!.getReader();
    let text = '';
    while ((text.match(/^id: /gm) ?? []).length < all.length - MAX_BACKLOG_EVENTS * 2) {
      const { value, done } = await reader.read();
      assert.ok(!done, 'the last turn ended the stream');
      text += new TextDecoder().decode(value);
    }
    controller.abort();
    await f.gateway.stop(task.id, 'test');
  });
});
