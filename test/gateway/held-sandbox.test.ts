import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ServerConfig } from '../../src/config/index.ts';
import type { SandboxExecutor } from '../../src/execution/index.ts';
import { BASE_IMAGE } from '../../src/sandbox/index.ts';
import type { Store } from '../../src/store/types.ts';
import { configFrom } from '../harness/gateway-fixture.ts';
import { commit, initRepo } from '../harness/git.ts';
import { heldContainers as listHeld } from '../harness/held-containers.ts';
import {
  askSandboxGateway,
  type SandboxGateway,
  sandboxDirBeside,
  startSandboxGateway,
} from '../harness/sandbox-gateway.ts';
import { ShellAgent } from '../harness/shell-agent.ts';
import { startUpstream } from '../harness/upstream.ts';

// A new conversation's task can run in a sandbox started before it came: these tests prove
// that such a task gets exactly what a sandbox started for it would (clone, network,
// surrogates, the image of the default branch as it is now), and that nothing is left.
const REAL = 'ghp_HeldSandboxToken0123456789abcdefABCDEF';
const ALLOWLIST = 'allow:\n  - host: api.test.example\n';

let dir: string;
let app: string;
let state: string;
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let store: Store;
let sandboxGateway: SandboxGateway;
let executor: SandboxExecutor;
let config: ServerConfig;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'errand-held-exec-'));
  upstream = await startUpstream(join(dir, 'up'), ['api.test.example']);
  writeFileSync(join(dir, 'up.pem'), upstream.caPem);
  app = initRepo(join(dir, 'app'), {
    'README.md': 'hello\n',
    '.errand/container/Containerfile': `FROM ${BASE_IMAGE}\n`,
    '.errand/network-allowlist.yaml': ALLOWLIST,
  });
  config = await configFrom(
    `execution:\n  max_concurrent: 10\nrepos:\n  app:\n    git_url: ${app}\n    network:\n      resolve: { api.test.example: "127.0.0.1:${upstream.httpsPort}" }\n      upstream_ca: ${join(dir, 'up.pem')}\n    masked_secrets:\n      GH_TOKEN: { value: ${REAL}, hosts: [api.test.example] }\n`,
    mkdtempSync(join(dir, 'cfg-')),
  );
  state = join(dir, 'state');
  sandboxGateway = await startSandboxGateway({ config, stateDir: state, agent: new ShellAgent() });
  ({ executor, store } = sandboxGateway);
});
after(async () => {
  await sandboxGateway.close();
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

// The next one is started once this task's sandbox is gone: ask waits for it.
const ask = (script: string, thread: string) =>
  askSandboxGateway(sandboxGateway, 'app', script, thread);

const heldContainers = () => listHeld(state);

const count = async () => (await heldContainers()).length;

describe('sandboxes held for the next task', () => {
  it('are started once a task has ended: one for the conversation, one for a new one', async () => {
    const first = await ask('echo one', 'c1');
    assert.equal(first.text, 'one\n');
    assert.equal(first.held, false, 'nothing was held before the first task');
    assert.equal(await count(), 2);
  });

  it('serves a new conversation as its own sandbox would: a fresh clone, the proxy, surrogates', async () => {
    const before = upstream.seen.length;
    const d = await ask(
      [
        'set -e',
        'cat README.md',
        `test "$GH_TOKEN" != "${REAL}" && echo surrogate-only`,
        'curl -sS -o /dev/null -w "%{http_code}\\n" -H "Authorization: token $GH_TOKEN" https://api.test.example/v1/x',
        'curl -sS -o /dev/null -w "%{http_code}\\n" https://evil.example.org/',
        'git log --format=%s',
        'echo mine > notes.txt',
      ].join('\n'),
      'c2',
    );
    assert.equal(d.held, true, 'the task ran in the held sandbox');
    assert.equal(d.kind, 'reply', d.text);
    assert.equal(d.text, 'hello\nsurrogate-only\n200\n403\ninit\n');
    assert.equal(upstream.seen[before]!.headers.authorization, `token ${REAL}`);
  });

  it("serves a follow-up in its conversation's own folders, with a surrogate of its own", async () => {
    const env = await ask('echo "$GH_TOKEN"', 'c2');
    const follow = await ask('cat notes.txt; echo "$GH_TOKEN"', 'c2');
    assert.equal(follow.held, true, "the follow-up ran in its conversation's held sandbox");
    const [notes, token] = follow.text.trim().split('\n');
    assert.equal(notes, 'mine');
    assert.notEqual(token, env.text.trim(), 'every task gets new surrogates');
    assert.notEqual(token, REAL);
  });

  it('are set aside when the default branch changed the image; the task runs in the new one', async () => {
    commit(
      app,
      {
        '.errand/container/Containerfile': `FROM ${BASE_IMAGE}\nRUN echo v2 > /image-version\n`,
      },
      'new image',
    );
    const fresh = await ask('cat /image-version', 'c3');
    assert.equal(fresh.kind, 'reply', fresh.text);
    assert.equal(fresh.text, 'v2\n');
    assert.equal(fresh.held, false);
    const follow = await ask('cat /image-version', 'c1');
    assert.equal(follow.text, 'v2\n');
    assert.equal(follow.held, false, 'the follow-up had an old image held');
    assert.equal((await ask('cat /image-version', 'c4')).held, true);
  });

  it('leave nothing running when the task cannot start (an invalid allowlist)', async () => {
    const before = await count();
    commit(app, { '.errand/network-allowlist.yaml': 'allow:\n  - hots: x\n' }, 'typo');
    try {
      const d = await ask('echo never', 'c5');
      assert.equal(d.kind, 'error');
      assert.match(d.text, /network-allowlist\.yaml on branch main is invalid/);
      // The one it took is gone, and none is started after a task that could not start.
      assert.equal(await count(), before - 1);
    } finally {
      commit(app, { '.errand/network-allowlist.yaml': ALLOWLIST }, 'fix');
    }
  });

  it('are not started or used when execution.hold_sandbox is off', async () => {
    const before = await count();
    config.execution.hold_sandbox = false;
    try {
      const d = await ask('echo off', 'c4');
      assert.equal(d.text, 'off\n');
      assert.equal(d.held, false);
      assert.equal(await count(), before);
    } finally {
      config.execution.hold_sandbox = true;
    }
  });

  it("goes with its conversation's folders, and never deletes them itself", async () => {
    const d = await ask('echo kept > kept.txt', 'c6');
    const conversation = (await store.getConversation(d.conversationId!))!;
    const folders = join(sandboxDirBeside(state), 'conversations', 'app', conversation.id);
    const before = await count();
    await executor.removeConversation(conversation);
    assert.equal(await count(), before - 1, "the conversation's held sandbox went first");
    assert.equal(existsSync(folders), false);
  });

  it('are removed when errand closes, with their spare folders and none of a conversation', async () => {
    const conversations = join(sandboxDirBeside(state), 'conversations', 'app');
    const c2 = (await store.listConversations({ repoId: 'app' })).find((c) => c.threadKey === 'c2');
    const notes = join(conversations, c2!.id, 'workspace', 'notes.txt');
    assert.ok(existsSync(notes));
    await executor.close();
    assert.deepEqual(await heldContainers(), []);
    assert.deepEqual(
      readdirSync(conversations).filter((n) => n.startsWith('.spare-')),
      [],
    );
    assert.ok(existsSync(notes), "a conversation's folders stay");
  });
});
