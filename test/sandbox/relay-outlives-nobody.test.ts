import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { SANDBOX_ADDRESS } from '../../src/sandbox/index.ts';
import { processStart } from '../../src/util/process-start.ts';
import { isAlive } from '../harness/process-alive.ts';

const run = promisify(execFile);

// A process that opens a sandbox network namespace the way errand does, says the relay's
// pid and its own, and waits. With `stuck`, it then blocks its event loop (errand busy in a long
// synchronous step): a connection the relay hands over stays unacknowledged, in flight.
const OPENER = `
import { ensurePodmanEnv } from ${JSON.stringify(new URL('../../src/sandbox/index.ts', import.meta.url).href)};
import { startSandboxNetns } from ${JSON.stringify(new URL('../../src/sandbox/index.ts', import.meta.url).href)};
const [dir, mode] = process.argv.slice(1);
const ns = await startSandboxNetns(await ensurePodmanEnv(dir));
ns.attach((socket) => socket.destroy());
console.log(ns.path.split('/')[2], process.pid);
process.stdin.once('data', () => {
  if (mode === 'stuck') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
});
setInterval(() => {}, 1000);
`;

// Connections from inside the namespace: opens N to the relay's HTTPS port, says so once
// all are established, and keeps them open.
const CLIENT = `
const n = Number(process.argv[1]);
let open = 0;
for (let i = 0; i < n; i++) {
  const s = require('node:net').connect(443, process.argv[2], () => {
    if (++open === n) console.log('connected');
  });
  s.on('error', () => undefined);
}
setInterval(() => {}, 1000);
`;
const CONNECTIONS = 8;

interface Opener {
  child: ChildProcess;
  /** The opener's pid: `child` may be runuser, which started it as another user. */
  pid: number;
  relay: number;
  /** The namespace's identity, as /proc/PID/ns/net links to it: `net:[inode]`. */
  netns: string;
}

// errand run by a normal user: its relay runs in podman's user namespace (`podman unshare`).
const USER = 'errand-ci';
const USER_NODE = '/opt/errand-node/node';

function rootlessSkip(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (nsenter, and to switch to a normal user)';
  if (spawnSync('id', [USER]).status !== 0) return `no user ${USER} (.ci/run makes it)`;
  if (!existsSync(USER_NODE)) return `no ${USER_NODE} (test/sandbox/rootless.test.ts makes it)`;
  return false;
}

async function open(mode: 'stuck' | 'idle', asUser = false): Promise<Opener & { dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'errand-relay-'));
  if (asUser) chownSync(dir, Number(run1('id', ['-u', USER])), Number(run1('id', ['-g', USER])));
  const argv = ['--input-type=module', '-e', OPENER, dir, mode];
  const child = asUser
    ? spawn('runuser', ['-u', USER, '--', USER_NODE, ...argv], {
        cwd: dir,
        stdio: ['pipe', 'pipe', 'inherit'],
      })
    : spawn(process.execPath, argv, { stdio: ['pipe', 'pipe', 'inherit'] });
  const [relay, pid] = await new Promise<number[]>((resolve, reject) => {
    child.stdout!.once('data', (b: Buffer) => resolve(b.toString().trim().split(' ').map(Number)));
    child.once('exit', (code) => reject(new Error(`opener exited ${code}`)));
  });
  return { child, pid: pid!, relay: relay!, netns: readlinkSync(`/proc/${relay}/ns/net`), dir };
}

const run1 = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' }).stdout;

function linkOf(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    // Gone while it was looked at (the process or the descriptor ended): it holds nothing.
    return undefined;
  }
}

/** Every process on the host, by pid, with when it started. */
function processes(): Map<number, string> {
  const all = new Map<number, string>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const start = processStart(Number(name));
    if (start !== undefined) all.set(Number(name), start);
  }
  return all;
}

/**
 * Processes of `before` still running that are in the namespace or hold a descriptor of
 * it. Only those: the kernel reuses a freed namespace's inode number for the next one, and
 * other processes on the machine make namespaces; one made after errand's death could
 * join the old namespace only through a holder from before.
 */
function holdersOf(netns: string, before: Map<number, string>): number[] {
  const now = processes();
  return [...before]
    .filter(([pid, start]) => now.get(pid) === start)
    .map(([pid]) => pid)
    .filter((pid) => {
      let fds: string[] = [];
      try {
        fds = readdirSync(`/proc/${pid}/fd`);
      } catch {
        // Ended while it was looked at.
      }
      const links = [`/proc/${pid}/ns/net`, ...fds.map((fd) => `/proc/${pid}/fd/${fd}`)];
      return links.some((l) => linkOf(l) === netns);
    });
}

/** The number of connections waiting in the relay's accept queue on port 443. */
async function waitingToBeAccepted(relay: number): Promise<number> {
  const { stdout } = await run('nsenter', [
    `--net=/proc/${relay}/ns/net`,
    'ss',
    '-Hltn',
    'sport = :443',
  ]);
  return Number(stdout.trim().split(/\s+/)[1]);
}

async function until(done: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Kills the opener and waits, bounded, for its relay to go; says whether it went and which
 * processes still hold its namespace. A relay that outlived errand is ended afterwards, so
 * a failing run leaves nothing behind.
 */
async function killAndWatch(o: Opener): Promise<{ gone: boolean; holders: number[] }> {
  const before = processes();
  process.kill(o.pid, 'SIGKILL');
  await new Promise((r) => o.child.once('exit', r));
  const gone = await until(() => !isAlive(o.relay), 'the relay is gone').then(
    () => true,
    () => false,
  );
  const holders = holdersOf(o.netns, before);
  if (!gone) process.kill(o.relay, 'SIGKILL');
  return { gone, holders };
}

/**
 * Blocks the opener, opens connections to its relay from inside the namespace until the
 * relay has accepted them all (so one is handed over and unacknowledged, the others
 * queued behind it), kills the opener and watches.
 */
async function killWithConnectionsInFlight(asUser: boolean) {
  const o = await open('stuck', asUser);
  let client: ChildProcess | undefined;
  try {
    o.child.stdin!.write('block\n');
    client = spawn(
      'nsenter',
      [
        `--net=/proc/${o.relay}/ns/net`,
        process.execPath,
        '-e',
        CLIENT,
        String(CONNECTIONS),
        SANDBOX_ADDRESS,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise((resolve) => client!.stdout!.once('data', resolve));
    // Accepted all: the relay handed the first one over and queued the others behind
    // its acknowledgement, which errand, stuck, never sends.
    await until(
      async () => (await waitingToBeAccepted(o.relay)) === 0,
      'the relay accepted every connection',
    );
    client.kill('SIGKILL');
    await new Promise((r) => client!.once('exit', r));
    return await killAndWatch(o);
  } finally {
    client?.kill('SIGKILL');
    rmSync(o.dir, { recursive: true, force: true });
  }
}

describe('sandbox networks die with errand', () => {
  it('the relay holding a sandbox network exits when errand is killed with SIGKILL', async () => {
    const o = await open('idle');
    try {
      assert.ok(isAlive(o.relay), 'the relay runs');
      const { gone, holders } = await killAndWatch(o);
      assert.equal(gone, true, 'the relay is gone');
      assert.deepEqual(holders, [], 'no process holds the network namespace');
    } finally {
      rmSync(o.dir, { recursive: true, force: true });
    }
  });

  it('the relay exits when errand is killed while connections it handed over are in flight', {
    skip: process.getuid?.() !== 0 && 'needs root (nsenter)',
  }, async () => {
    const { gone, holders } = await killWithConnectionsInFlight(false);
    assert.equal(gone, true, 'the relay is gone');
    assert.deepEqual(holders, [], 'no process holds the network namespace');
  });

  it('the relay of a rootless errand exits when errand is killed while connections it handed over are in flight', {
    skip: rootlessSkip(),
  }, async () => {
    const { gone, holders } = await killWithConnectionsInFlight(true);
    assert.equal(gone, true, 'the relay is gone');
    assert.deepEqual(holders, [], 'no process holds the network namespace');
  });
});
