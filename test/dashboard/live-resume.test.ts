import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { type DashboardFixture, dashboardFixture } from '../harness/dashboard-fixture.ts';
import { eventually } from '../harness/gateway-fixture.ts';
import { LiveExecutor } from '../harness/live-executor.ts';

let f: DashboardFixture;
before(async () => {
  f = await dashboardFixture({ executor: new LiveExecutor() });
});
after(() => f?.close());

/** Reads SSE frames from a stream until `enough` says so; returns their ids and types. */
async function readFrames(
  url: string,
  headers: Record<string, string>,
  enough: (frames: Array<{ id?: string; event?: string }>) => boolean,
) {
  const controller = new AbortController();
  const res = await fetch(url, { headers, signal: controller.signal });
  assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const reader = res.body!.getReader();
  const frames: Array<{ id?: string; event?: string }> = [];
  let buf = '';
  while (!enough(frames)) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += new TextDecoder().decode(value);
    let i = buf.indexOf('\n\n');
    while (i >= 0) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const id = /^id: (.*)$/m.exec(frame)?.[1];
      const event = /^event: (.*)$/m.exec(frame)?.[1];
      if (event) frames.push({ id, event });
      i = buf.indexOf('\n\n');
    }
  }
  controller.abort();
  return frames;
}

it('a task stream resumes after the Last-Event-ID it is given, without repeating events', async () => {
  await fetch(`${f.url}/api/repos/app/tasks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${f.controlToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ text: 'a slow one' }),
  });
  const [task] = await eventually(async () => {
    const t = await f.store.listTasks({ states: ['running'] });
    return t.length ? t : undefined;
  }, 'the task to run');
  await eventually(async () => (await f.store.listEvents(task!.id)).length >= 6, 'some events');
  const url = `${f.url}/live?topic=task:${task!.id}`;
  const first = await readFrames(url, {}, (fr) => fr.filter((x) => x.event === 'ev').length >= 6);
  const ids = first.filter((x) => x.event === 'ev').map((x) => Number(x.id));
  assert.deepEqual(ids.slice(0, 3), [1, 2, 3], 'a new stream starts at the first event');
  const resumed = await readFrames(url, { 'last-event-id': '4' }, (fr) =>
    fr.some((x) => x.event === 'ev'),
  );
  assert.equal(Number(resumed.find((x) => x.event === 'ev')!.id), 5);
  await f.gateway.stop(task!.id, 'test');
});
