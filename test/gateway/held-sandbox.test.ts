import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ServerConfig } from '../../src/config/index.ts';
import { defaultCacheDir } from '../../src/config/index.ts';
import { Gateway } from '../../src/gateway/index.ts';
import { SandboxExecutor } from '../../src/gateway/sandbox-executor.ts';
import { BASE_IMAGE } from '../../src/sandbox/index.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import type { Store } from '../../src/store/types.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { configFrom } from '../harness/gateway-fixture.ts';
import { commit, initRepo } from '../harness/git.ts';
import { heldContainers as listHeld } from '../harness/held-containers.ts';
import { MemoryChannel } from '../harness/memory-channel.ts';
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
let gateway: Gateway;
let executor: SandboxExecutor;
let config: ServerConfig;
let channel: MemoryChannel;

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
    `repos:\n  app:\n    git_url: ${app}\n    network:\n      resolve: { api.test.example: "127.0.0.1:${upstream.httpsPort}" }\n      upstream_ca: ${join(dir, 'up.pem')}\n    masked_secrets:\n      GH_TOKEN: { value: ${REAL}, hosts: [api.test.example] }\n`,
    mkdtempSync(join(dir, 'cfg-')),
  );
  state = join(dir, 'state');
  executor = await SandboxExecutor.onHost({
    stateDir: state,
    cacheDir: defaultCacheDir(),
    imageMaxAgeMs: 3_600_000,
    config: () => config,
    agent: new ShellAgent(),
    logger: silentLogger(),
  });
  store = openSqliteStore(join(state, 'errand.db'));
  gateway = new Gateway({
    store,
    executor,
    config,
    logger: silentLogger(),
    channelFactory: (repoId) => {
      channel = new MemoryChannel(repoId);
      return [channel];
    },
  });
  await gateway.start();
});
after(async () => {
  await gateway.shutdown();
  await store.close();
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

async function ask(script: string, thread: string) {
  const n = channel.sent.length;
  await channel.send(script, { thread, id: `${thread}-${n}-${Date.now()}` });
  const d = (await channel.waitForSent(n + 1, 120_000))[n]!.delivery;
  const tasks = await store.listTasks({ conversationId: d.conversationId! });
  const held = (await store.listEvents(tasks.at(-1)!.id)).some(
    (e) => e.kind === 'sandbox' && (e.data as { step?: string }).step === 'held',
  );
  // The next one is started once this task's sandbox is gone.
  await executor.settle();
  return { ...d, held };
}

const heldContainers = () => listHeld(state);

describe('a sandbox held for the next new conversation', () => {
  it('is started once a task has ended, and serves a new conversation as its own would', async () => {
    const first = await ask('echo one', 'c1');
    assert.equal(first.text, 'one\n');
    assert.equal(first.held, false, 'nothing was held before the first task');
    assert.equal((await heldContainers()).length, 1);

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
    // Its folders are the conversation's now, where the next task of the thread finds them.
    const follow = await ask('cat notes.txt', 'c2');
    assert.equal(follow.text, 'mine\n');
    assert.equal(follow.held, false, 'a follow-up runs in a sandbox of its own');
  });

  it('is set aside when the default branch changed the image; the task runs in the new one', async () => {
    assert.equal((await heldContainers()).length, 1);
    commit(
      app,
      {
        '.errand/container/Containerfile': `FROM ${BASE_IMAGE}\nRUN echo v2 > /image-version\n`,
      },
      'new image',
    );
    const d = await ask('cat /image-version', 'c3');
    assert.equal(d.kind, 'reply', d.text);
    assert.equal(d.text, 'v2\n');
    assert.equal(d.held, false);
    // One held again, for the new image; the old one is gone.
    assert.equal((await heldContainers()).length, 1);
    assert.equal((await ask('cat /image-version', 'c4')).held, true);
  });

  it('leaves nothing running when the task cannot start (an invalid allowlist)', async () => {
    assert.equal((await heldContainers()).length, 1);
    commit(app, { '.errand/network-allowlist.yaml': 'allow:\n  - hots: x\n' }, 'typo');
    try {
      const d = await ask('echo never', 'c5');
      assert.equal(d.kind, 'error');
      assert.match(d.text, /network-allowlist\.yaml on branch main is invalid/);
      assert.deepEqual(await heldContainers(), []);
    } finally {
      commit(app, { '.errand/network-allowlist.yaml': ALLOWLIST }, 'fix');
    }
  });

  it('is not started when execution.hold_sandbox is off', async () => {
    config.execution.hold_sandbox = false;
    try {
      assert.equal((await ask('echo off', 'c6')).text, 'off\n');
      assert.deepEqual(await heldContainers(), []);
    } finally {
      config.execution.hold_sandbox = true;
    }
    await ask('echo on', 'c7');
    assert.equal((await heldContainers()).length, 1);
  });

  it('is removed with its folders when errand closes', async () => {
    const conversations = join(state, 'workspaces', 'conversations', 'app');
    assert.equal(readdirSync(conversations).filter((n) => n.startsWith('.spare-')).length, 1);
    await executor.close();
    assert.deepEqual(await heldContainers(), []);
    assert.deepEqual(
      readdirSync(conversations).filter((n) => n.startsWith('.spare-')),
      [],
    );
    assert.ok(existsSync(join(conversations)));
  });
});
