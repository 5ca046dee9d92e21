import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  BASE_IMAGE,
  type ContainerFolders,
  type ContainerSpec,
  containerFolders,
  ensurePodmanEnv,
  runContainer,
  runPodman,
} from '../../src/sandbox/index.ts';

let root: string;
let env: NodeJS.ProcessEnv;
let folders: ContainerFolders;
let n = 0;

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'errand-box-'));
  env = await ensurePodmanEnv(join(root, 'state'));
  folders = containerFolders(join(root, 'state'), join(root, 'sandboxes'));
});
after(() => rmSync(root, { recursive: true, force: true }));

function spec(command: string, over: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    image: BASE_IMAGE,
    name: `errand-test-${process.pid}-${++n}`,
    command: ['/bin/sh', '-c', command],
    mounts: [],
    env: {},
    limits: { memory: '256m', cpus: 1, pids: 256 },
    network: { kind: 'none' },
    labels: { 'errand.instance': `test-${process.pid}` },
    ...over,
  };
}

async function run(command: string, over: Partial<ContainerSpec> = {}) {
  let stdout = '';
  const r = await runContainer(
    { ...spec(command, over), onStdout: (c) => (stdout += c.toString()) },
    env,
    folders,
  );
  return { ...r, stdout };
}

async function leftovers(): Promise<string[]> {
  const r = await runPodman(
    [
      'ps',
      '--all',
      '--filter',
      `label=errand.instance=test-${process.pid}`,
      '--format',
      '{{.Names}}',
    ],
    { env },
  );
  return r.stdout.split('\n').filter(Boolean);
}

describe('a sandbox container', () => {
  it('sees its own mounts and nothing else of the host', async () => {
    const convA = join(root, 'conv-a');
    const convB = join(root, 'conv-b');
    mkdirSync(convA);
    mkdirSync(convB);
    writeFileSync(join(convA, 'mine.txt'), 'a');
    writeFileSync(join(convB, 'theirs.txt'), 'b');
    writeFileSync(join(root, 'host-secret.txt'), 'do not read');
    const r = await run(
      `cat /workspace/mine.txt; echo; ls /workspace; test -e /root/.ssh && echo HOST_SSH; test -e ${root}/host-secret.txt && echo HOST_FILE; ls ${convB} 2>&1 | head -1`,
      { mounts: [{ source: convA, target: '/workspace' }] },
    );
    assert.equal(r.outcome, 'exited');
    assert.equal(r.exitCode, 0, r.stderrTail);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], 'a');
    assert.equal(lines[1], 'mine.txt');
    assert.doesNotMatch(r.stdout, /theirs\.txt|HOST_SSH|HOST_FILE/);
    assert.match(r.stdout, /No such file or directory/);
  });

  it('writes through a read-write mount and is refused on a read-only one', async () => {
    const rw = join(root, 'rw');
    const ro = join(root, 'ro');
    mkdirSync(rw);
    mkdirSync(ro);
    const r = await run(
      'echo hi > /workspace/out.txt && (echo x > /opt/ro/x 2>/dev/null && echo WROTE_RO || echo RO_REFUSED)',
      {
        mounts: [
          { source: rw, target: '/workspace' },
          { source: ro, target: '/opt/ro', readOnly: true },
        ],
      },
    );
    assert.equal(readFileSync(join(rw, 'out.txt'), 'utf8'), 'hi\n');
    assert.match(r.stdout, /RO_REFUSED/);
  });

  it('runs without the dropped capabilities and with no-new-privileges, checked from inside', async () => {
    const r = await run('grep -E "^(CapEff|CapBnd|NoNewPrivs)" /proc/self/status');
    const caps = Object.fromEntries(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(/:\s+/)),
    );
    // Kept: CHOWN(0) DAC_OVERRIDE(1) FOWNER(3) SETGID(6) SETUID(7) = 0xcb.
    assert.equal(BigInt(`0x${caps.CapBnd}`), 0xcbn, `bounding set ${caps.CapBnd}`);
    assert.equal(BigInt(`0x${caps.CapEff}`) & ~0xcbn, 0n);
    assert.equal(caps.NoNewPrivs, '1');
  });

  it('has no network interface but loopback', async () => {
    const r = await run('ls /sys/class/net');
    assert.equal(r.stdout.trim(), 'lo');
  });

  it("gets none of the proxy variables of errand's environment (a proxy URL with its password), which podman copies in by default", async () => {
    const hostProxy = {
      HTTPS_PROXY: 'http://corpuser:corp-secret@proxy.corp.internal:3128',
      http_proxy: 'http://corpuser:corp-secret@proxy.corp.internal:3128',
      no_proxy: '.corp.internal,10.0.0.0/8',
    };
    const envIn = async (network: ContainerSpec['network']) => {
      let stdout = '';
      const r = await runContainer(
        { ...spec('env', { network }), onStdout: (c) => (stdout += c.toString()) },
        { ...env, ...hostProxy },
        folders,
      );
      assert.equal(r.outcome, 'exited', r.stderrTail);
      return stdout;
    };
    const seen = await envIn({ kind: 'none' });
    assert.doesNotMatch(seen, /corp|_proxy=/i, seen);
    // With the network sandbox off (podman's own network), the host's proxy may be the
    // only way out: kept.
    assert.match(await envIn({ kind: 'unrestricted' }), /^HTTPS_PROXY=http:\/\/corpuser:/m);
  });

  it('passes the command its environment and returns its exit code and output', async () => {
    const r = await run('echo "$GREETING"; exit 7', { env: { GREETING: 'hello sandbox' } });
    assert.equal(r.outcome, 'exited');
    assert.equal(r.exitCode, 7);
    assert.equal(r.stdout, 'hello sandbox\n');
  });

  it('is killed at its timeout', async () => {
    const t0 = Date.now();
    const r = await run('sleep 60', { timeoutMs: 1500 });
    assert.equal(r.outcome, 'timeout');
    assert.ok(Date.now() - t0 < 30_000);
  });

  it('is killed at its memory limit and says so', async () => {
    // tail keeps a line in memory, and /dev/zero has no line ends: it grows until killed.
    const r = await run('echo started; exec tail /dev/zero', {
      limits: { memory: '64m', pids: 64 },
    });
    assert.equal(r.stdout, 'started\n');
    assert.equal(r.outcome, 'oom', `${r.outcome} ${r.exitCode} ${r.stderrTail}`);
    assert.equal(r.exitCode, 137);
  });

  it('is stopped when its signal aborts', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 1000);
    const r = await run('sleep 60', { signal: ac.signal });
    assert.equal(r.outcome, 'stopped');
  });

  it('reports a missing image as a setup failure', async () => {
    const r = await run('true', { image: 'localhost/errand-missing:none' });
    assert.equal(r.outcome, 'failed_to_start');
    assert.match(r.stderrTail, /errand-missing/);
  });

  it('leaves no container behind after success, failure, timeout or stop', async () => {
    assert.deepEqual(await leftovers(), []);
  });
});
