import assert from 'node:assert/strict';
import {
  appendFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Gateway } from '../../src/gateway/index.ts';
import type { SandboxDriver } from '../../src/sandbox/index.ts';
import { BASE_IMAGE } from '../../src/sandbox/index.ts';
import type { Store } from '../../src/store/types.ts';
import { configFrom } from '../harness/gateway-fixture.ts';
import { initRepo } from '../harness/git.ts';
import type { MemoryChannel } from '../harness/memory-channel.ts';
import { type SandboxGateway, startSandboxGateway } from '../harness/sandbox-gateway.ts';
import { ShellAgent } from '../harness/shell-agent.ts';
import { startUpstream } from '../harness/upstream.ts';

const REAL = 'ghp_ServerConfigToken0123456789abcdefABCD';

let dir: string;
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let store: Store;
let gateway: Gateway;
let driver: SandboxDriver;
let channels: Map<string, MemoryChannel>;
let sandboxGateway: SandboxGateway;

function origin(name: string, files: Record<string, string>): string {
  return initRepo(join(dir, name), files);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'errand-exec-'));
  upstream = await startUpstream(join(dir, 'up'), ['api.test.example']);
  writeFileSync(join(dir, 'up.pem'), upstream.caPem);
  const app = origin('app', {
    'README.md': 'hello\n',
    '.errand/container/Containerfile': `FROM ${BASE_IMAGE}\n`,
    '.errand/network-allowlist.yaml': 'allow:\n  - host: api.test.example\n',
  });
  const bare = origin('bare', { 'README.md': 'no sandbox definition\n' });
  const config = await configFrom(
    `execution:\n  max_concurrent: 2\n  shutdown_grace_seconds: 1\nrepos:\n  app:\n    git_url: ${app}\n    network:\n      resolve: { api.test.example: "127.0.0.1:${upstream.httpsPort}" }\n      upstream_ca: ${join(dir, 'up.pem')}\n    masked_secrets:\n      GH_TOKEN: { value: ${REAL}, hosts: [api.test.example] }\n  bare:\n    git_url: ${bare}\n`,
    mkdtempSync(join(dir, 'cfg-')),
  );
  sandboxGateway = await startSandboxGateway({
    config,
    stateDir: join(dir, 'state'),
    agent: new ShellAgent(),
  });
  ({ store, gateway, channels } = sandboxGateway);
  driver = sandboxGateway.executor.driver;
});
after(async () => {
  await sandboxGateway.close();
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

async function ask(repo: string, script: string, thread: string) {
  const ch = channels.get(repo)!;
  const n = ch.sent.length;
  await ch.send(script, { thread, id: `${thread}-${n}-${Date.now()}` });
  return (await ch.waitForSent(n + 1, 120_000))[n]!.delivery;
}

describe('a task in its sandbox', () => {
  it("runs in the conversation's clone, reaches allowed hosts through the proxy, and holds only a surrogate", async () => {
    const before = upstream.seen.length;
    const d = await ask(
      'app',
      'set -e; cat README.md; echo made > notes.txt; test "$GH_TOKEN" != "' +
        REAL +
        '" && echo surrogate-only; curl -sS -o /dev/null -w "%{http_code}\\n" -H "Authorization: token $GH_TOKEN" https://api.test.example/v1/x; curl -sS -o /dev/null -w "%{http_code}\\n" https://evil.example.org/',
      't1',
    );
    assert.equal(d.kind, 'reply', d.text);
    assert.equal(d.text, 'hello\nsurrogate-only\n200\n403\n');
    assert.equal(upstream.seen[before]!.headers.authorization, `token ${REAL}`);
    const [task] = await store.listTasks({ conversationId: d.conversationId! });
    const image = (await store.listEvents(task!.id)).find((e) => e.kind === 'sandbox_image');
    assert.ok(image, 'the image step is recorded with its build output');
    assert.equal((image.data as { ok: boolean }).ok, true);
  });

  it('keeps the workspace for the next task of the conversation, and apart from other conversations', async () => {
    assert.equal((await ask('app', 'cat notes.txt', 't1')).text, 'made\n');
    const other = await ask('app', 'cat notes.txt 2>/dev/null || echo absent', 't2');
    assert.equal(other.text, 'absent\n');
  });

  it('shows the last requests of a network log larger than a string can hold (a task flooding the proxy to hide what it sent)', async () => {
    const d = await ask(
      'app',
      'curl -sS -o /dev/null https://api.test.example/v1/early; echo done',
      'flood',
    );
    const conversation = (await store.getConversation(d.conversationId!))!;
    const log = join(
      sandboxGateway.executor.workspaces.dirs('app', conversation.id).root,
      'network.log',
    );
    // What millions of requests would have written before the last one, as a hole that
    // takes no disk: past V8's longest string, read whole it could not be decoded.
    truncateSync(log, statSync(log).size + 600 * 1024 * 1024);
    appendFileSync(
      log,
      `\n${JSON.stringify({ time: new Date().toISOString(), action: 'allowed', method: 'POST', url: 'https://api.test.example/v1/exfil', status: 200, swapped: [] })}\n`,
    );
    const shown = await sandboxGateway.executor.networkLog(conversation, 500);
    assert.equal(shown.at(-1)?.url, 'https://api.test.example/v1/exfil');
  });

  it('sends back what the task put in /outbox', async () => {
    const d = await ask('app', 'echo "the report" > /outbox/report.txt; echo done', 't3');
    assert.equal(d.files.map((f) => basename(f)).join(), 'report.txt');
    assert.equal(readFileSync(d.files[0]!, 'utf8'), 'the report\n');
  });

  it("runs in errand's base image when the default branch has no sandbox definition, and says so", async () => {
    const d = await ask('bare', 'echo ran', 'b1');
    assert.equal(d.kind, 'reply', d.text);
    assert.equal(d.text, 'ran\n');
    const [task] = await store.listTasks({ repoId: 'bare' });
    const warning = (await store.listEvents(task!.id)).find((e) =>
      String((e.data as { warning?: string }).warning).includes('running in errand'),
    );
    assert.match(
      String((warning?.data as { warning?: string } | undefined)?.warning),
      /\.errand\/container\/ on branch main does not exist: running in errand's base image/,
    );
  });

  it('is stopped with its container, leaving nothing behind', async () => {
    const ch = channels.get('app')!;
    const n = ch.sent.length;
    await ch.send('echo started; sleep 120', { thread: 't4', id: `stop-${Date.now()}` });
    let task: string | undefined;
    for (let i = 0; i < 600 && !task; i++) {
      task = (await store.listTasks({ states: ['running'] }))[0]?.id;
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 3000));
    await gateway.stop(task!, 'carol');
    const d = (await ch.waitForSent(n + 1, 60_000))[n]!.delivery;
    assert.equal(d.kind, 'stopped');
    // The sandbox held for the next new conversation is not the task's.
    const left = (await driver.removeOrphans()).filter((name) => name.includes(task!));
    assert.deepEqual(left, [], 'no container of the task left');
  });
});
