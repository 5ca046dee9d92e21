import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { type DashboardFixture, dashboardFixture } from '../harness/dashboard-fixture.ts';
import { eventually } from '../harness/gateway-fixture.ts';
import { LiveExecutor } from '../harness/live-executor.ts';

/** Every string in a JSON value, keys included. */
function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(strings);
  if (v && typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => [k, ...strings(x)]);
  return [];
}

let f: DashboardFixture;
let state: string;
let conversationId: string;
let deliveryId: string;
before(async () => {
  // The state folder, as errand lays it out: attachments and deliveries below it.
  state = mkdtempSync(join(tmpdir(), 'errand-state-'));
  const deliveries = join(state, 'deliveries');
  f = await dashboardFixture({ executor: new LiveExecutor(), deliveriesDir: deliveries });
  const api = { authorization: `Bearer ${f.controlToken}`, 'content-type': 'application/json' };
  await fetch(`${f.url}/api/repos/app/tasks`, {
    method: 'POST',
    headers: api,
    body: JSON.stringify({ text: 'make a report' }),
  });
  const [conversation] = await eventually(async () => {
    const list = await f.store.listConversations({});
    return list.length ? list : undefined;
  }, 'the conversation');
  conversationId = conversation!.id;
  const [task] = await f.store.listTasks({ conversationId });
  // A message with an attachment, as the email and Slack channels save them, and a reply
  // with a file, as the executor copies it from the outbox.
  const saved = join(state, 'attachments', 'app', 'abc123', 'notes.txt');
  mkdirSync(join(saved, '..'), { recursive: true });
  writeFileSync(saved, 'notes');
  const { message } = await f.store.insertMessage({
    repoId: 'app',
    channel: 'web',
    externalId: 'with-attachment',
    threadKeys: [conversation!.threadKey],
    ownThreadKey: conversation!.threadKey,
    sender: { id: 'alice' },
    text: 'here are my notes',
    attachments: [{ name: 'notes.txt', path: saved, size: 5, contentType: 'text/plain' }],
    receivedAt: Date.now(),
  });
  await f.store.setMessageState(message.id, 'answered', { conversationId, taskId: task!.id });
  const file = join(deliveries, conversationId, task!.id, 'report.txt');
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, 'the report');
  const delivery = await f.store.createDelivery({
    repoId: 'app',
    channel: 'web',
    conversationId,
    taskId: task!.id,
    kind: 'reply',
    text: 'Attached: the report.',
    files: [file, join(deliveries, conversationId, task!.id, 'gone.txt')],
  });
  deliveryId = delivery.id;
});
after(async () => {
  await f?.close();
  rmSync(state, { recursive: true, force: true });
});

it('shows no host path in the messages and deliveries of the conversation API (the state folder layout stays hidden)', async () => {
  const r = await fetch(`${f.url}/api/conversations/${conversationId}`, {
    headers: { authorization: `Bearer ${f.controlToken}` },
  });
  assert.equal(r.status, 200);
  const body = (await r.json()) as {
    messages: Array<{ attachments: unknown[] }>;
    deliveries: Array<{ id: string; files: unknown[] }>;
  };
  for (const part of [body.messages, body.deliveries]) {
    for (const s of strings(part)) {
      assert.ok(!s.startsWith('/'), `a host path in the answer: ${s}`);
      assert.ok(!s.includes(state), `the state folder in the answer: ${s}`);
    }
  }
  assert.ok(!JSON.stringify(body).includes(state), 'the state folder anywhere in the answer');
  // What a script needs is still there: names and sizes.
  const withFile = body.deliveries.find((d) => d.id === deliveryId)!;
  assert.deepEqual(withFile.files, [
    { name: 'report.txt', size: 10 },
    { name: 'gone.txt', size: null },
  ]);
  const withAttachment = body.messages.find((m) => m.attachments.length > 0)!;
  assert.deepEqual(withAttachment.attachments, [
    { name: 'notes.txt', size: 5, contentType: 'text/plain' },
  ]);
});

it('shows no host path in any other API answer or page of the conversation', async () => {
  const [task] = await f.store.listTasks({ conversationId });
  for (const path of [
    '/api/tasks',
    `/api/tasks/${task!.id}`,
    `/api/tasks/${task!.id}/events`,
    '/api/conversations',
    `/api/conversations/${conversationId}/network`,
    '/api/health',
    `/conversations/${conversationId}`,
    `/tasks/${task!.id}`,
    '/',
  ]) {
    const r = await fetch(`${f.url}${path}`, {
      headers: { authorization: `Bearer ${f.controlToken}` },
    });
    assert.equal(r.status, 200, path);
    assert.ok(!(await r.text()).includes(state), `${path} shows the state folder`);
  }
});

it('still serves a reply file by its name from the conversation page', async () => {
  const page = await (
    await fetch(`${f.url}/conversations/${conversationId}`, {
      headers: { authorization: `Bearer ${f.controlToken}` },
    })
  ).text();
  const href = `/conversations/${conversationId}/files/${deliveryId}/report.txt`;
  assert.ok(page.includes(`href="${href}"`), 'the page links the file by name');
  const r = await fetch(`${f.url}${href}`, {
    headers: { authorization: `Bearer ${f.controlToken}` },
  });
  assert.equal(r.status, 200);
  assert.equal(await r.text(), 'the report');
});
