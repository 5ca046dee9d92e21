import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { defaultCacheDir } from '../../src/config/index.ts';
import {
  BASE_IMAGE,
  DEFAULT_CLAUDE_CODE_VERSION,
  ensureClaudeCli,
  ensurePodmanEnv,
  HOSTS_FILE,
} from '../../src/sandbox/index.ts';
import { MAIN } from '../harness/cli.ts';

// errand run by a normal user gets rootless podman and a network namespace inside podman's
// user namespace. The test switches to an unprivileged user, which needs root to start.
const USER = 'errand-ci';
const NODE = '/opt/errand-node/node';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to switch to an unprivileged user';
  if (spawnSync('id', [USER]).status !== 0)
    return `no user ${USER} (create it with: useradd -m ${USER}; .ci/run does)`;
  if (spawnSync('runuser', ['-u', USER, '--', 'test', '-r', MAIN]).status !== 0)
    return `${MAIN} is not readable by ${USER}`;
  return undefined;
}

const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

const as = (cmd: string, env: Record<string, string> = {}) =>
  spawnSync(
    'runuser',
    [
      '-u',
      USER,
      '--',
      'env',
      ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
      'bash',
      '-lc',
      cmd,
    ],
    { encoding: 'utf8', timeout: 300_000 },
  );

let dir: string;
let cliCache: string | undefined;

/**
 * The user's own cache of the Claude Code CLI (the tasks run a shell, but every sandbox
 * mounts the CLI): linked from root's, which tests install once.
 */
async function userCliCache(): Promise<string> {
  if (cliCache) return cliCache;
  await ensureClaudeCli(defaultCacheDir());
  const cache = join(dir, 'cli-cache');
  mkdirSync(join(cache, 'claude-code'), { recursive: true });
  execFileSync('cp', [
    '-al',
    join(defaultCacheDir(), 'claude-code', DEFAULT_CLAUDE_CODE_VERSION),
    join(cache, 'claude-code', DEFAULT_CLAUDE_CODE_VERSION),
  ]);
  execFileSync('chmod', ['-R', 'a+rX', cache]);
  cliCache = cache;
  return cache;
}

const CHILD = new URL('../harness/retention-child.ts', import.meta.url).pathname;

/** A step of test/harness/retention-child.ts as the user, on the state in `work`. */
async function retentionStep(work: string, ...args: string[]) {
  const r = as(
    `cd ~ && ${NODE} ${CHILD} ${args[0]} ${work} ${args.slice(1).map(shellQuote).join(' ')}`,
    {
      ERRAND_TEST_CLI_CACHE: await userCliCache(),
    },
  );
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

/** A folder of the user's for one test's errand state, in the test's folder. */
function userFolder(name: string): string {
  const work = join(dir, name);
  mkdirSync(work);
  execFileSync('chown', [USER, work]);
  return work;
}

/** Every entry left under `root`, relative to it (read as root: errand's user may not). */
function entriesUnder(root: string): string[] {
  if (!existsSync(root)) return [];
  return execFileSync('find', [root, '-mindepth', '1', '-printf', '%P\n'], { encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .sort();
}

describe('errand as a normal user', { skip: skipReason() }, () => {
  before(async () => {
    mkdirSync('/opt/errand-node', { recursive: true });
    if (!existsSync(NODE)) copyFileSync(process.execPath, NODE);
    execFileSync('chmod', ['755', NODE]);
    dir = mkdtempSync(join(tmpdir(), 'errand-rootless-'));
    execFileSync('chmod', ['755', dir]);
    // The user's podman has its own image store: give it the base image.
    const tar = join(dir, 'base.tar');
    const env = await ensurePodmanEnv(join(dir, 'root-state'));
    execFileSync('podman', ['save', '-o', tar, BASE_IMAGE], { env });
    execFileSync('chmod', ['644', tar]);
    const loaded = as(`podman load -q -i ${tar}`);
    assert.equal(loaded.status, 0, loaded.stderr);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs the sandbox rootless, with dropped capabilities and the proxy as the only way out', () => {
    const allow = join(dir, 'allow.yaml');
    writeFileSync(allow, 'allow:\n  - host: allowed.example\n');
    execFileSync('chmod', ['644', allow]);
    const r = as(
      `mkdir -p ~/proj && cd ~/proj && ${NODE} ${MAIN} sandbox run --image ${BASE_IMAGE} --allowlist ${allow} -- sh -c 'id -u; grep CapEff /proc/self/status; ls /sys/class/net; curl -sS -m 5 -o /dev/null -w "%{http_code}\\n" https://blocked.example/'`,
    );
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.deepEqual(r.stdout.trim().split('\n'), ['0', 'CapEff:\t00000000000000cb', 'lo', '403']);
    const left = as('podman ps --all --filter label=errand.managed=true --format "{{.Names}}"');
    assert.equal(left.stdout.trim(), '', 'no container left');
  });

  it("shows a rootless sandbox no path of the user's errand state, cache or config folder, nor the host's name", () => {
    const home = as('printf %s "$HOME"').stdout;
    assert.ok(home.startsWith('/'), home);
    const r = as(
      `mkdir -p ~/proj && cd ~/proj && ${NODE} ${MAIN} sandbox run --image ${BASE_IMAGE} -- sh -c 'cat /proc/self/mountinfo; echo ==; cat /etc/hosts; echo ==; hostname; echo ==; cat /run/.containerenv; echo ==; curl -sS -m 5 -o /dev/null -w "%{http_code}\n" https://blocked.example/'`,
    );
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const [mountinfo, hosts, name, containerenv, https] = r.stdout.split('==\n');
    for (const folder of ['.local/state/errand', '.cache/errand', '.config/errand'])
      assert.ok(!r.stdout.includes(`${home}/${folder}`), `${folder} shows:\n${r.stdout}`);
    // What it mounts of errand's is the sandbox folder's (podman's own storage is podman's).
    assert.match(
      mountinfo!,
      new RegExp(` ${home}/\\.local/share/errand/sandboxes/tasks/\\S+ /opt/errand/ca\\.pem `),
    );
    assert.equal(hosts, HOSTS_FILE);
    assert.equal(name, 'sandbox\n');
    assert.ok(!containerenv!.includes(home), containerenv);
    assert.equal(https, '403\n', "errand's CA is trusted: the proxy answered over TLS");
  });

  it('holds a sandbox in its own network namespace and runs the task that comes later', () => {
    const src = (p: string) => JSON.stringify(new URL(`../../src/${p}`, import.meta.url).href);
    const script = `
      const { PodmanSandbox, BASE_IMAGE, ensurePodmanEnv } = await import(${src('sandbox/index.ts')});
      const { startSandboxNetns } = await import(${src('sandbox/index.ts')});
      const state = process.env.HOME + '/held-state';
      const sandbox = new PodmanSandbox({ stateDir: state, cacheDir: '/nonexistent', sandboxDir: process.env.HOME + '/held-sandboxes', imageMaxAgeMs: 3600000 });
      const ns = await startSandboxNetns(await ensurePodmanEnv(state));
      const held = await sandbox.hold({ image: BASE_IMAGE, mounts: [], limits: { memory: '256m' },
        network: { kind: 'netns', path: ns.path, dns: ns.dns }, maxLifetimeMs: 120000 });
      let out = '';
      const r = await held.run({ command: ['sh', '-c', 'id -u; ls /sys/class/net; echo "$X"; cat'],
        env: { X: 'from the task' }, stdin: 'the prompt', timeoutMs: 60000, onStdout: (c) => (out += c) });
      await ns.close();
      console.log(JSON.stringify({ outcome: r.outcome, out }));`;
    const r = as(`cd ~ && ${NODE} --input-type=module -e ${shellQuote(script)}`);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const { outcome, out } = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    assert.equal(outcome, 'exited');
    assert.equal(out, '0\nlo\nfrom the task\nthe prompt');
    const left = as('podman ps --all --filter label=errand.managed=true --format "{{.Names}}"');
    assert.equal(left.stdout.trim(), '', 'no container left');
  });

  it('does not send a host file an outbox symlink points to, rootless', async () => {
    const cache = await userCliCache();
    const url = (p: string) => JSON.stringify(new URL(`../${p}`, import.meta.url).href);
    const script = `
      const fs = await import('node:fs');
      const path = await import('node:path');
      const os = await import('node:os');
      const { configFrom } = await import(${url('harness/gateway-fixture.ts')});
      const { initRepo } = await import(${url('harness/git.ts')});
      const { startSandboxGateway } = await import(${url('harness/sandbox-gateway.ts')});
      const { ShellAgent } = await import(${url('harness/shell-agent.ts')});
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'errand-rootless-outbox-'));
      const secret = path.join(dir, 'secret.txt');
      fs.writeFileSync(secret, 'ROOTLESS-HOST-SECRET');
      const origin = initRepo(path.join(dir, 'origin'), { 'README.md': 'hi\\n' });
      const config = await configFrom('repos:\\n  app:\\n    git_url: ' + origin + '\\n', dir);
      const sg = await startSandboxGateway({ config, stateDir: path.join(dir, 'state'),
        agent: new ShellAgent(), cacheDir: ${JSON.stringify(cache)} });
      const ch = sg.channels.get('app');
      await ch.send('ln -s /proc/self/environ /outbox/env.txt; ln -s ' + secret +
        ' /outbox/secret.txt; echo fine > /outbox/ok.txt; echo done', { thread: 't', id: 'm1' });
      const d = (await ch.waitForSent(1, 240000))[0].delivery;
      const files = d.files.map((f) => ({ name: path.basename(f), content: fs.readFileSync(f, 'utf8'),
        copy: f.startsWith(sg.executor.deliveriesDir + path.sep) }));
      const left = fs.readdirSync(sg.executor.workspaces.dirs('app', d.conversationId).outbox);
      await sg.close();
      fs.rmSync(dir, { recursive: true, force: true });
      console.log(JSON.stringify({ kind: d.kind, text: d.text, files, left }));`;
    const r = as(`cd ~ && ${NODE} --input-type=module -e ${shellQuote(script)}`);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    assert.equal(out.kind, 'reply', out.text);
    assert.deepEqual(out.files, [{ name: 'ok.txt', content: 'fine\n', copy: true }]);
    assert.match(out.text, /env\.txt was not attached: it is a symbolic link/);
    assert.match(out.text, /secret\.txt was not attached: it is a symbolic link/);
    assert.deepEqual(out.left, [], 'the outbox is empty after the task');
  });
  it('retention deletes folders a rootless agent locked (0500, 0000, sticky, given to a sub-uid) and goes on past a conversation it cannot delete', async () => {
    const work = userFolder('retention-sweep');
    const { conversations } = await retentionStep(work, 'run', 'stuck', 'locked');
    const [stuck, locked] = conversations as Array<{ id: string; root: string; text: string }>;
    assert.match(locked!.text, /locked/);
    // The attack is real: the host sees files of a uid that is not errand's user's.
    const uid = Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }));
    for (const folder of ['workspace', 'agent', 'storage']) {
      const owner = Number(
        execFileSync('stat', ['-c', '%u', join(locked!.root, folder, 'subuid', 'f')], {
          encoding: 'utf8',
        }),
      );
      assert.notEqual(owner, uid, `${folder}/subuid/f belongs to a sub-uid`);
    }
    // The older one gets a folder neither errand's user nor its user mapping may remove
    // (the host's root's): a sweep that stopped there would delete nothing.
    mkdirSync(join(stuck!.root, 'workspace', 'root-owned'));
    writeFileSync(join(stuck!.root, 'workspace', 'root-owned', 'file'), 'root');
    const r = await retentionStep(work, 'sweep');
    assert.equal(r.removed, 1);
    assert.deepEqual(r.left, [stuck!.id], 'the locked conversation is gone from the store');
    assert.deepEqual(entriesUnder(locked!.root), [], 'and every folder of it from the host');
    assert.equal(existsSync(locked!.root), false);
    assert.deepEqual(
      entriesUnder(stuck!.root),
      ['workspace', 'workspace/root-owned', 'workspace/root-owned/file'],
      'of the undeletable one only what errand cannot remove is left',
    );
    assert.deepEqual(
      r.undeleted.map((u: { conversationId: string; attempts: number }) => [
        u.conversationId,
        u.attempts,
      ]),
      [[stuck!.id, 1]],
    );
    assert.match(r.undeleted[0].reason, /not removed: errand’s user may not remove them/);
    assert.deepEqual(r.host, ['keep.txt'], 'the host folder the links pointed to is untouched');
    // Tried again at the next sweep, and deleted once it can be.
    rmSync(join(stuck!.root, 'workspace', 'root-owned'), { recursive: true });
    const again = await retentionStep(work, 'sweep');
    assert.equal(again.removed, 1);
    assert.deepEqual(again.left, []);
    assert.equal(existsSync(stuck!.root), false);
    assert.deepEqual(again.host, ['keep.txt']);
  });

  it('deleting a conversation removes folders a rootless agent locked, and its links without following them', async () => {
    const work = userFolder('explicit-delete');
    const { conversations } = await retentionStep(work, 'run', 'locked');
    const [locked] = conversations as Array<{ id: string; root: string }>;
    assert.ok(entriesUnder(locked!.root).includes('workspace/subuid/escape'));
    const r = await retentionStep(work, 'delete', locked!.id);
    assert.deepEqual(r.result, { outcome: 'deleted' });
    assert.deepEqual(r.left, []);
    assert.equal(existsSync(locked!.root), false);
    assert.deepEqual(r.host, ['keep.txt'], 'the host folder the links pointed to is untouched');
    assert.equal(readFileSync(join(work, 'host-folder', 'keep.txt'), 'utf8'), 'the host file');
  });
  it('does not run podman unshare rm through a link in the path of the folder it removes', () => {
    const work = userFolder('unshare-guard');
    const [, base] = /^errand-ci:(\d+):/m.exec(readFileSync('/etc/subuid', 'utf8')) ?? [];
    assert.ok(base, `${USER} has sub-uids in /etc/subuid`);
    // What a sandbox's uid 1000 leaves: a folder and file of a sub-uid, closed to errand's user.
    const subuid = String(Number(base) + 999);
    const plant = (conv: string) => {
      mkdirSync(join(conv, 'd'), { recursive: true });
      writeFileSync(join(conv, 'd', 'f'), 'x');
      execFileSync('chown', ['-R', `${USER}:`, dirname(conv)]);
      execFileSync('chown', ['-R', `${subuid}:${subuid}`, join(conv, 'd')]);
      execFileSync('chmod', ['0500', join(conv, 'd')]);
    };
    plant(join(work, 'real', 'conv'));
    plant(join(work, 'plain', 'conv'));
    execFileSync('ln', ['-s', join(work, 'real'), join(work, 'link')]);
    const src = JSON.stringify(new URL('../../src/sandbox/index.ts', import.meta.url).href);
    const script = `
      const { PodmanSandbox } = await import(${src});
      const sandbox = new PodmanSandbox({ stateDir: ${JSON.stringify(join(work, 'state'))}, cacheDir: '/nonexistent',
        sandboxDir: ${JSON.stringify(join(work, 'sandboxes'))}, imageMaxAgeMs: 3600000 });
      const through = await sandbox.removeFolder(${JSON.stringify(join(work, 'link', 'conv'))}).then(() => 'removed', (e) => e.code);
      const plain = await sandbox.removeFolder(${JSON.stringify(join(work, 'plain', 'conv'))}).then(() => 'removed', (e) => e.code);
      console.log(JSON.stringify({ through, plain }));`;
    const r = as(`cd ~ && ${NODE} --input-type=module -e ${shellQuote(script)}`);
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.deepEqual(JSON.parse(r.stdout.trim().split('\n').at(-1)!), {
      through: 'tree_not_removed',
      plain: 'removed',
    });
    assert.deepEqual(
      entriesUnder(join(work, 'real')),
      ['conv', 'conv/d', 'conv/d/f'],
      'nothing removed as root of the mapping through the link',
    );
    assert.equal(
      existsSync(join(work, 'plain', 'conv')),
      false,
      'the same folder, named by its real path, goes',
    );
  });
});
