import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BASE_IMAGE } from '../../src/sandbox/index.ts';
import type { Store } from '../../src/store/types.ts';
import { configFrom } from '../harness/gateway-fixture.ts';
import { commit, commitBlobNames, git, initRepo } from '../harness/git.ts';
import { ALIAS_BOMB, DEEP_NESTING, OVERSIZED_SANDBOX_FILE } from '../harness/hostile-yaml.ts';
import type { MemoryChannel } from '../harness/memory-channel.ts';
import { type SandboxGateway, startSandboxGateway } from '../harness/sandbox-gateway.ts';
import { ShellAgent } from '../harness/shell-agent.ts';
import { startUpstream } from '../harness/upstream.ts';

// A repository's default branch is trusted to define the sandbox, not to be small or
// kind: what a hostile one holds must end in a refusal naming the file, never in an
// internal error or in errand's process growing without bound.

let dir: string;
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let store: Store;
let channels: Map<string, MemoryChannel>;
let sandboxGateway: SandboxGateway;

const CONTAINERFILE = `FROM ${BASE_IMAGE}\n`;

/** A repository whose default branch holds `files` (and a Containerfile). */
function origin(name: string, files: Record<string, string>): string {
  return initRepo(join(dir, name), { '.errand/container/Containerfile': CONTAINERFILE, ...files });
}

/** A repository whose `.errand/container/` holds `count` more files (one blob, many names). */
function crowdedOrigin(name: string, count: number): string {
  const repo = origin(name, {});
  const blob = git(repo, 'rev-parse', 'HEAD:.errand/container/Containerfile');
  const names = Array.from({ length: count }, (_, i) => `.errand/container/f${i}`);
  commitBlobNames(repo, blob, names, 'crowd the build context');
  return repo;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'errand-hostile-'));
  upstream = await startUpstream(join(dir, 'up'), ['api.test.example']);
  writeFileSync(join(dir, 'up.pem'), upstream.caPem);
  const linked = origin('linked', { 'README.md': 'limits:\n  timeout_seconds: 5\n' });
  symlinkSync('../README.md', join(linked, '.errand', 'sandbox.yaml'));
  commit(linked, {}, 'sandbox file as a link');
  const repos: Record<string, string> = {
    aliased: origin('aliased', {
      '.errand/network-allowlist.yaml':
        'allow:\n  - { host: &api api.test.example, methods: [GET] }\n  - { host: *api, paths: ["/only"] }\n',
    }),
    bomb_sandbox: origin('bomb-sandbox', { '.errand/sandbox.yaml': ALIAS_BOMB }),
    bomb_allowlist: origin('bomb-allowlist', { '.errand/network-allowlist.yaml': ALIAS_BOMB }),
    deep_sandbox: origin('deep-sandbox', {
      '.errand/sandbox.yaml': DEEP_NESTING,
    }),
    big_sandbox: origin('big-sandbox', {
      '.errand/sandbox.yaml': OVERSIZED_SANDBOX_FILE,
    }),
    big_allowlist: origin('big-allowlist', {
      '.errand/network-allowlist.yaml': `allow: []\n${'# padding\n'.repeat(120_000)}`,
    }),
    linked,
    crowded: crowdedOrigin('crowded', 1000),
  };
  const config = await configFrom(
    `execution:\n  max_concurrent: 2\n  shutdown_grace_seconds: 1\n  hold_sandbox: false\nrepos:\n${Object.entries(
      repos,
    )
      .map(
        ([id, url]) =>
          `  ${id}:\n    git_url: ${url}\n    network:\n      resolve: { api.test.example: "127.0.0.1:${upstream.httpsPort}" }\n      upstream_ca: ${join(dir, 'up.pem')}\n`,
      )
      .join('')}`,
    mkdtempSync(join(dir, 'cfg-')),
  );
  sandboxGateway = await startSandboxGateway({
    config,
    stateDir: join(dir, 'state'),
    agent: new ShellAgent(),
  });
  ({ store, channels } = sandboxGateway);
});
after(async () => {
  await sandboxGateway?.close();
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function ask(repo: string, script: string) {
  const ch = channels.get(repo)!;
  const n = ch.sent.length;
  await ch.send(script, { thread: `${repo}-${n}`, id: `${repo}-${n}-${Date.now()}` });
  const delivery = (await ch.waitForSent(n + 1, 120_000))[n]!.delivery;
  const [task] = await store.listTasks({ conversationId: delivery.conversationId! });
  return { delivery, outcome: task?.outcome };
}

/** Each row: what the default branch holds, the repository, the task's outcome, the reply. */
const REFUSED: [attack: string, repo: string, outcome: string, says: RegExp][] = [
  [
    'an alias bomb in .errand/sandbox.yaml is refused naming the file and the alias limit',
    'bomb_sandbox',
    'sandbox_file_invalid',
    /^\.errand\/sandbox\.yaml on branch main is invalid: its aliases \(\*name\) expand past errand's limit of 100 alias uses/,
  ],
  [
    'an alias bomb in .errand/network-allowlist.yaml is refused naming the file and the alias limit',
    'bomb_allowlist',
    'allowlist_invalid',
    /^\.errand\/network-allowlist\.yaml on branch main is invalid: its aliases \(\*name\) expand past errand's limit of 100 alias uses/,
  ],
  [
    'deep nesting in .errand/sandbox.yaml is refused naming the file and the depth limit',
    'deep_sandbox',
    'sandbox_file_invalid',
    /^\.errand\/sandbox\.yaml on branch main is invalid: its collections are nested more than 64 levels deep/,
  ],
  [
    'a .errand/sandbox.yaml over 1 MiB is refused naming the file and the size limit',
    'big_sandbox',
    'sandbox_file_invalid',
    /^\.errand\/sandbox\.yaml on branch main is invalid: \.errand\/sandbox\.yaml is 1200029 bytes, more than the 1 MiB/,
  ],
  [
    'a .errand/network-allowlist.yaml over 1 MiB is refused naming the file and the size limit',
    'big_allowlist',
    'allowlist_invalid',
    /^\.errand\/network-allowlist\.yaml on branch main is invalid: \.errand\/network-allowlist\.yaml is 1200010 bytes, more than the 1 MiB/,
  ],
  [
    'a .errand/sandbox.yaml that is a symlink is refused naming the file',
    'linked',
    'sandbox_file_invalid',
    /^\.errand\/sandbox\.yaml on branch main is invalid: \.errand\/sandbox\.yaml must be a file, not a symlink/,
  ],
  [
    'a .errand/container/ with more files than the limit is refused naming the folder and the limit',
    'crowded',
    'container_invalid',
    /^\.errand\/container\/ on branch main: \.errand\/container has more than 1000 entries/,
  ],
];

describe('a hostile default branch', () => {
  for (const [attack, repo, code, says] of REFUSED) {
    it(attack, async () => {
      const { delivery, outcome } = await ask(repo, 'echo the-task-ran');
      assert.equal(delivery.kind, 'error', delivery.text);
      assert.equal(outcome, code, delivery.text);
      assert.match(delivery.text, says);
      assert.doesNotMatch(delivery.text, /internal error/);
      assert.doesNotMatch(delivery.text, /the-task-ran/, 'no sandbox ran');
    });
  }

  it('an allowlist using aliases within the limit still lets its requests through', async () => {
    const { delivery } = await ask(
      'aliased',
      'curl -sS -o /dev/null -w "%{http_code}\\n" https://api.test.example/only',
    );
    assert.equal(delivery.kind, 'reply', delivery.text);
    assert.equal(delivery.text.trim(), '200');
  });
});
