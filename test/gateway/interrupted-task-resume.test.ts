import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Conversation } from '../../src/domain/index.ts';
import { BASE_IMAGE } from '../../src/sandbox/index.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import { Workspaces } from '../../src/workspace/index.ts';
import { initRepo } from '../harness/git.ts';
import { startJsonChild, stopJsonChild } from '../harness/json-child.ts';
import { type Scenario, startModelServer } from '../harness/model-server.ts';
import { sandboxDirBeside } from '../harness/sandbox-gateway.ts';

// errand (the real gateway, sandbox executor, podman and Claude Code CLI) in a child
// process, killed with SIGKILL while the agent works on a thread's first task, then
// started again on the same state: the thread's follow-up must carry the first message.

const CHILD = fileURLToPath(new URL('../harness/sandbox-gateway-child.ts', import.meta.url));
const API_HOST = 'api.model.test';
const REAL_KEY = 'sk-ant-api03-RealKeyForTheScriptedServer0123456789abcdef';
const FOLLOW_UP = 'What were we doing?';
const firstText = (thread: string) => `Please rename the config loader of ${thread}.`;

/** Threads whose first message reached the model server, which holds its answer forever. */
const held = new Set<string>();
const scenario: Scenario = (req) => {
  const t = req.lastUserText;
  const all = JSON.stringify(req.body.messages ?? []);
  // Checked first: a resumed session's last user turn may carry the first message too.
  if (t.includes(FOLLOW_UP)) {
    const thread = /\(thread (\S+?)\.\)/.exec(t)?.[1] ?? '';
    return [
      {
        type: 'text',
        text: all.includes(firstText(thread))
          ? 'You asked me to rename the config loader.'
          : 'I do not know what you mean.',
      },
    ];
  }
  const first = /rename the config loader of (\S+)\./.exec(t);
  if (first) {
    held.add(first[1]!);
    // Never answered: errand is killed while the agent waits for it.
    return new Promise(() => {});
  }
  return [{ type: 'text', text: 'I do not understand.' }];
};

async function until<T>(check: () => Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 240_000;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

let dir: string;
let model: Awaited<ReturnType<typeof startModelServer>>;
const stateDir = () => join(dir, 'state');

async function withStore<T>(f: (s: ReturnType<typeof openSqliteStore>) => Promise<T>) {
  const store = openSqliteStore(join(stateDir(), 'errand.db'));
  try {
    return await f(store);
  } finally {
    await store.close();
  }
}

/**
 * Sends the thread's first message, waits until the agent's request for it reached the model
 * server and the conversation holds the CLI's session id, then kills errand with SIGKILL.
 * Returns the conversation as the killed errand left it.
 */
async function killMidFirstTask(thread: string): Promise<Conversation> {
  const c = startJsonChild(CHILD, [dir]);
  try {
    await c.waitFor((e) => e.ev === 'ready', 'ready', 120_000);
    c.send({ id: `${thread}-1`, thread, text: firstText(thread) });
    return await until(async () => {
      if (!held.has(thread)) return undefined;
      const conv = await withStore((s) => s.findConversationByThread('app', 'web', thread));
      return conv?.sessionId ? conv : undefined;
    }, 'the session id stored while the first task runs');
  } finally {
    await stopJsonChild(c, 'SIGKILL');
  }
}

/**
 * Starts errand again, waits for the interruption notice, sends the follow-up and returns
 * the delivery that answers it, then shuts errand down.
 */
async function followUpAfterRestart(
  thread: string,
  conversationId: string,
  beforeFollowUp?: () => void,
) {
  const c = startJsonChild(CHILD, [dir]);
  try {
    await c.waitFor((e) => e.ev === 'ready', 'ready', 120_000);
    await c.waitFor(
      (e) => e.ev === 'delivery' && e.kind === 'interrupted' && e.conversationId === conversationId,
      'the interruption notice',
      60_000,
    );
    beforeFollowUp?.();
    c.send({ id: `${thread}-2`, thread, text: `${FOLLOW_UP} (thread ${thread}.)` });
    return (await c.waitFor(
      (e) => e.ev === 'delivery' && (e.kind === 'reply' || e.kind === 'error'),
      'the answer to the follow-up',
      240_000,
    )) as { kind: string; text: string; conversationId: string };
  } finally {
    await stopJsonChild(c, 'SIGTERM');
  }
}

/** The follow-up's request to the model API (the one with tools, not a side request). */
function followUpRequest(thread: string) {
  const r = model.requests.find(
    (q) => (q.body.tools?.length ?? 0) > 0 && q.lastUserText.includes(`thread ${thread}.`),
  );
  assert.ok(r, 'the follow-up reached the model server');
  return r;
}

async function eventsOfLastTask(conversationId: string) {
  return await withStore(async (s) => {
    const tasks = await s.listTasks({ conversationId });
    assert.deepEqual(
      tasks.map((t) => t.state),
      ['interrupted', 'done'],
      'the first task is interrupted, the follow-up done',
    );
    return (await s.listEvents(tasks.at(-1)!.id)).map((e) => e.kind);
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'errand-resume-'));
  model = await startModelServer(join(dir, 'model-ca'), API_HOST, scenario);
  writeFileSync(join(dir, 'model-ca.pem'), model.caPem);
  const origin = initRepo(join(dir, 'origin'), {
    '.errand/container/Containerfile': `FROM ${BASE_IMAGE}\n`,
    'README.md': 'project\n',
  });
  writeFileSync(
    join(dir, 'errand.yaml'),
    `execution:\n  shutdown_grace_seconds: 1\nrepos:\n  app:\n    git_url: ${origin}\n    model: claude-sonnet-4-5\n    agent:\n      api_key: ${REAL_KEY}\n      api_host: ${API_HOST}\n    network:\n      resolve: { ${API_HOST}: "127.0.0.1:${model.port}" }\n      upstream_ca: ${join(dir, 'model-ca.pem')}\n`,
  );
});
after(async () => {
  await model.close();
  rmSync(dir, { recursive: true, force: true });
  rmSync(sandboxDirBeside(stateDir()), { recursive: true, force: true });
});

describe('a first task interrupted by SIGKILL, continued in its thread', () => {
  it("resumes the interrupted task's session, so the follow-up sees the first message", async () => {
    const conv = await killMidFirstTask('resume');
    const answer = await followUpAfterRestart('resume', conv.id);
    assert.equal(answer.conversationId, conv.id, 'the follow-up lands in the same conversation');
    assert.equal(answer.kind, 'reply', answer.text);
    assert.equal(answer.text, 'You asked me to rename the config loader.');
    const sent = JSON.stringify(followUpRequest('resume').body.messages);
    assert.ok(sent.includes(firstText('resume')), 'the model sees the first message');
    assert.ok(!sent.includes('so this is a new one'), 'through the resumed session, not a summary');
    assert.ok(!(await eventsOfLastTask(conv.id)).includes('agent_recovery'));
  });

  it("starts over with the interrupted task's message when its session cannot be resumed", async () => {
    const conv = await killMidFirstTask('broken');
    const agentState = new Workspaces({
      root: join(stateDir(), 'workspaces'),
      conversations: join(sandboxDirBeside(stateDir()), 'conversations'),
    }).dirs('app', conv.id).agentState;
    // The CLI's own record of the session is gone (a disk mishap, a corrupt file). Removed
    // once errand is back, when the killed errand's sandbox is gone too.
    const answer = await followUpAfterRestart('broken', conv.id, () =>
      rmSync(join(agentState, 'claude', 'projects'), { recursive: true, force: true }),
    );
    assert.equal(answer.conversationId, conv.id);
    assert.equal(answer.kind, 'reply', answer.text);
    assert.equal(answer.text, 'You asked me to rename the config loader.');
    const recovery = followUpRequest('broken').lastUserText;
    assert.match(recovery, /could not be resumed/);
    assert.ok(recovery.includes(firstText('broken')), 'the summary carries the first message');
    assert.ok((await eventsOfLastTask(conv.id)).includes('agent_recovery'));
  });

  it("starts with the interrupted task's message when errand died before the agent named a session", async () => {
    const conv = await killMidFirstTask('unnamed');
    // What a kill before the CLI's first line leaves: a running task, no session.
    await withStore((s) => s.updateConversation(conv.id, { sessionId: null }));
    const answer = await followUpAfterRestart('unnamed', conv.id);
    assert.equal(answer.conversationId, conv.id);
    assert.equal(answer.kind, 'reply', answer.text);
    assert.equal(answer.text, 'You asked me to rename the config loader.');
    const prompt = followUpRequest('unnamed').lastUserText;
    assert.match(prompt, /No session of this conversation was kept/);
    assert.ok(prompt.includes(firstText('unnamed')), 'the prompt carries the first message');
  });
});
