import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultCacheDir, type ServerConfig } from '../../src/config/index.ts';
import { SandboxExecutor } from '../../src/execution/index.ts';
import { BASE_IMAGE, HOSTS_FILE, PodmanSandbox } from '../../src/sandbox/index.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { configFrom } from '../harness/gateway-fixture.ts';
import { initRepo } from '../harness/git.ts';
import type { MemoryChannel } from '../harness/memory-channel.ts';
import {
  askSandboxGateway,
  type SandboxGateway,
  startSandboxGateway,
} from '../harness/sandbox-gateway.ts';
import { ShellAgent } from '../harness/shell-agent.ts';
import { startUpstream } from '../harness/upstream.ts';

// A container's mount table names the host path of every bind mount, and podman would
// write the host's own hosts file and name into it. The agent reads all of that: these
// tests look at what it sees, and at where errand keeps a container's files on the host.
const REAL = 'ghp_HiddenPathsToken0123456789abcdefABCDEF';

let dir: string;
let state: string;
let sandboxes: string;
let configDir: string;
let config: ServerConfig;
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let sandboxGateway: SandboxGateway;
let channel: MemoryChannel;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'errand-hidden-'));
  state = join(dir, 'state');
  sandboxes = join(dir, 'sandboxes');
  configDir = mkdtempSync(join(dir, 'cfg-'));
  upstream = await startUpstream(join(dir, 'up'), ['api.test.example']);
  writeFileSync(join(dir, 'up.pem'), upstream.caPem);
  const app = initRepo(join(dir, 'app'), {
    'README.md': 'hello\n',
    '.errand/container/Containerfile': `FROM ${BASE_IMAGE}\n`,
    '.errand/network-allowlist.yaml': 'allow:\n  - host: api.test.example\n',
  });
  config = await configFrom(
    `repos:\n  app:\n    git_url: ${app}\n    network:\n      resolve: { api.test.example: "127.0.0.1:${upstream.httpsPort}" }\n      upstream_ca: ${join(dir, 'up.pem')}\n    masked_secrets:\n      GH_TOKEN: { value: ${REAL}, hosts: [api.test.example] }\n`,
    configDir,
  );
  sandboxGateway = await startSandboxGateway({
    config,
    stateDir: state,
    sandboxDir: sandboxes,
    agent: new ShellAgent(),
  });
  channel = sandboxGateway.channels.get('app')!;
});
after(async () => {
  await sandboxGateway.close();
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

const ask = (script: string, thread: string) =>
  askSandboxGateway(sandboxGateway, 'app', script, thread);

const LOOK = `
echo "== mountinfo"; cat /proc/self/mountinfo
echo "== hosts"; cat /etc/hosts
echo "== hostname"; echo "$(cat /etc/hostname)"; hostname
echo "== containerenv"; cat /run/.containerenv
echo "== resolv"; cat /etc/resolv.conf
echo "== env"; env
echo "== https"; curl -sS -o /dev/null -w "%{http_code}\\n" https://api.test.example/v1/hidden
`;

function sections(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(/^== /m).slice(1)) {
    const nl = part.indexOf('\n');
    out[part.slice(0, nl)] = part.slice(nl + 1);
  }
  return out;
}

/** The names the host's own /etc/hosts gives, but for the usual loopback ones. */
function hostEntries(): string[] {
  return readFileSync('/etc/hosts', 'utf8')
    .split('\n')
    .flatMap((l) => l.replace(/#.*/, '').trim().split(/\s+/).slice(1))
    .filter((n) => n && !/^(localhost|ip6-\w+)$/.test(n));
}

function assertHidesTheHost(seen: Record<string, string>): void {
  const secret = [state, defaultCacheDir(), configDir, join(dir, 'up.pem')];
  for (const [name, text] of Object.entries(seen))
    for (const path of secret) assert.ok(!text.includes(path), `${name} shows ${path}:\n${text}`);
  assert.equal(seen.hosts, HOSTS_FILE);
  const names = seen.hosts!.split(/\s+/);
  for (const n of [...hostEntries(), hostname(), 'host.containers.internal'])
    assert.ok(!names.includes(n), `/etc/hosts names ${n}`);
  assert.equal(seen.hostname, 'sandbox\nsandbox\n');
  // podman copies the host's search domains unless told not to.
  assert.doesNotMatch(seen.resolv!, /^(search|domain)\b/m);
}

describe("what a sandbox sees of errand's host", () => {
  it('holds only surrogates in the env file under the state folder, and nothing in the system temp folder', async () => {
    const tmpBefore = readdirSync(tmpdir()).filter((n) => n.startsWith('errand-env-'));
    const n = channel.sent.length;
    // The task waits until the test has looked at the host while it runs.
    await channel.send(
      'touch /workspace/.ready; for i in $(seq 600); do [ -e /workspace/.go ] && break; sleep 0.1; done; echo "$GH_TOKEN" | cut -c1-4',
      { thread: 'env', id: `env-${Date.now()}` },
    );
    const conversations = join(sandboxes, 'conversations', 'app');
    let workspace: string | undefined;
    for (let i = 0; i < 1200 && !workspace; i++) {
      workspace = (existsSync(conversations) ? readdirSync(conversations) : [])
        .map((c) => join(conversations, c, 'workspace'))
        .find((w) => existsSync(join(w, '.ready')));
      if (!workspace) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(workspace, 'the task started');
    const envDir = join(state, 'sandbox', 'env');
    const envFiles = readdirSync(envDir).map((f) => join(envDir, f));
    assert.equal(statSync(envDir).mode & 0o777, 0o700);
    for (const f of envFiles) assert.equal(statSync(f).mode & 0o777, 0o600, f);
    const texts = envFiles.map((f) => readFileSync(f, 'utf8'));
    const withToken = texts.filter((t) => t.includes('GH_TOKEN='));
    assert.equal(withToken.length, 1, "the task's variables are in its env file");
    assert.ok(!withToken[0]!.includes(REAL), 'the env file holds the surrogate, not the token');
    assert.deepEqual(
      readdirSync(tmpdir()).filter((n) => n.startsWith('errand-env-') && !tmpBefore.includes(n)),
      [],
      'no env file in the system temp folder',
    );
    writeFileSync(join(workspace, '.go'), '');
    const d = (await channel.waitForSent(n + 1, 120_000))[n]!.delivery;
    assert.equal(d.text, 'ghp_\n');
    await sandboxGateway.executor.settle();
    // Only the held sandboxes' files are left (no variables: theirs come with their task).
    for (const f of readdirSync(envDir))
      assert.ok(!readFileSync(join(envDir, f), 'utf8').includes('GH_TOKEN'), f);
  });

  it("shows no path of errand's state, cache or config folder, nor the host's name and hosts file, and still trusts the proxy", async () => {
    const before = upstream.seen.length;
    const d = await ask(LOOK, 'look');
    assert.equal(d.kind, 'reply', d.text);
    const seen = sections(d.text);
    assertHidesTheHost(seen);
    assert.equal(seen.https, '200\n', 'the entrypoint ran and the CA copy is trusted');
    assert.equal(upstream.seen[before]?.url, '/v1/hidden');
    // What it does mount of errand's comes from the sandbox folder.
    assert.match(seen.mountinfo!, new RegExp(` ${sandboxes}/tasks/[^ ]+ /opt/errand/ca\\.pem `));
    assert.match(
      seen.mountinfo!,
      new RegExp(` ${sandboxes}/tools/claude-[0-9.]+ /opt/errand/bin/claude `),
    );
  });

  it('shows no more in a sandbox held for the task', async () => {
    const d = await ask(LOOK, 'look');
    assert.equal(d.held, true, 'the follow-up ran in the sandbox held for it');
    const seen = sections(d.text);
    assertHidesTheHost(seen);
    assert.equal(seen.https, '200\n');
    assert.match(seen.mountinfo!, new RegExp(` ${sandboxes}/tasks/[^ ]+ /opt/errand/task `));
  });
});

describe("a container's files on the host", () => {
  it('removes the env files and file copies a killed errand left, at its next start, and none of a running one', async () => {
    const root = mkdtempSync(join(dir, 'crash-'));
    const crashState = join(root, 'state');
    const crashSandboxes = join(root, 'sandboxes');
    const script = `
      const { PodmanSandbox, BASE_IMAGE } = await import(${JSON.stringify(new URL('../../src/sandbox/index.ts', import.meta.url).href)});
      const d = new PodmanSandbox({ stateDir: process.argv[1], sandboxDir: process.argv[2], cacheDir: '/nonexistent', imageMaxAgeMs: 3600000 });
      await d.run({ taskId: 't_crashed', image: BASE_IMAGE, command: ['sh', '-c', 'echo up; sleep 300'], mounts: [], env: { A: 'b' }, limits: {}, network: { kind: 'none' }, timeoutMs: 300000, onStdout: () => process.stdout.write('up\\n') });`;
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', script, crashState, crashSandboxes],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const envDir = join(crashState, 'sandbox', 'env');
    const tasks = join(crashSandboxes, 'tasks');
    assert.equal(readdirSync(envDir).length, 1, 'the killed errand left its env file');
    assert.equal(readdirSync(tasks).length, 1, 'and its copies of errand files');
    // A build context it left, as a crash during a build would.
    mkdirSync(join(crashState, 'build', `${child.pid}-0a1b2c`), { recursive: true });

    // The next errand on these folders runs a task of its own while it cleans up.
    const executor = await SandboxExecutor.onHost({
      stateDir: crashState,
      sandboxDir: crashSandboxes,
      cacheDir: '/nonexistent',
      imageMaxAgeMs: 3_600_000,
      config: () => config,
      agent: new ShellAgent(),
      logger: silentLogger(),
    });
    const running = new PodmanSandbox({
      stateDir: join(root, 'other-state'),
      sandboxDir: crashSandboxes,
      cacheDir: '/nonexistent',
      imageMaxAgeMs: 3_600_000,
    });
    const controller = new AbortController();
    let started: () => void = () => undefined;
    const up = new Promise<void>((r) => {
      started = r;
    });
    const live = running.run({
      taskId: 't_live',
      image: BASE_IMAGE,
      command: ['sh', '-c', 'echo up; sleep 300'],
      mounts: [],
      env: {},
      limits: {},
      network: { kind: 'none' },
      timeoutMs: 300_000,
      signal: controller.signal,
      onStdout: () => started(),
    });
    await up;
    const liveFiles = readdirSync(tasks).filter((n) => n.split(/[.-]/)[0] === `${process.pid}`);
    assert.equal(liveFiles.length, 1);

    await executor.cleanupOrphans();
    assert.deepEqual(readdirSync(envDir), [], "the killed errand's env file is gone");
    assert.deepEqual(
      readdirSync(tasks),
      liveFiles,
      "its file copies are gone, the live task's stay",
    );
    assert.deepEqual(readdirSync(join(crashState, 'build')), []);
    controller.abort();
    assert.equal((await live).outcome, 'stopped');
    assert.deepEqual(readdirSync(tasks), [], 'the live task removed its own once done');
    await executor.close();
  });
});
