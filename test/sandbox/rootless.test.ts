import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BASE_IMAGE, ensurePodmanEnv } from '../../src/sandbox/index.ts';
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

describe('errand as a normal user', { skip: skipReason() }, () => {
  it('runs the sandbox rootless, with dropped capabilities and the proxy as the only way out', async () => {
    mkdirSync('/opt/errand-node', { recursive: true });
    if (!existsSync(NODE)) copyFileSync(process.execPath, NODE);
    execFileSync('chmod', ['755', NODE]);
    const dir = mkdtempSync(join(tmpdir(), 'errand-rootless-'));
    execFileSync('chmod', ['755', dir]);
    try {
      // The user's podman has its own image store: give it the base image.
      const tar = join(dir, 'base.tar');
      const env = await ensurePodmanEnv(join(dir, 'root-state'));
      execFileSync('podman', ['save', '-o', tar, BASE_IMAGE], { env });
      execFileSync('chmod', ['644', tar]);
      const loaded = as(`podman load -q -i ${tar}`);
      assert.equal(loaded.status, 0, loaded.stderr);
      const allow = join(dir, 'allow.yaml');
      writeFileSync(allow, 'allow:\n  - host: allowed.example\n');
      execFileSync('chmod', ['644', allow]);
      const r = as(
        `mkdir -p ~/proj && cd ~/proj && ${NODE} ${MAIN} sandbox run --image ${BASE_IMAGE} --allowlist ${allow} -- sh -c 'id -u; grep CapEff /proc/self/status; ls /sys/class/net; curl -sS -m 5 -o /dev/null -w "%{http_code}\\n" https://blocked.example/'`,
      );
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      assert.deepEqual(r.stdout.trim().split('\n'), [
        '0',
        'CapEff:\t00000000000000cb',
        'lo',
        '403',
      ]);
      const left = as('podman ps --all --filter label=errand.managed=true --format "{{.Names}}"');
      assert.equal(left.stdout.trim(), '', 'no container left');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
