import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CHECKS, formatChecks, runChecks } from '../../src/cli/check.ts';
import { cli, tempHome } from '../harness/cli.ts';

describe('errand check', () => {
  it('passes node, git, podman and a real container start on this machine', async () => {
    const { home, env } = tempHome();
    try {
      const results = await runChecks({ env, cwd: home });
      const byId = new Map(results.map((r) => [r.id, r]));
      for (const id of ['node', 'git', 'podman', 'container', 'config', 'state']) {
        assert.equal(byId.get(id)?.status, 'ok', `${id}: ${byId.get(id)?.detail}`);
      }
      assert.deepEqual(
        results.map((r) => r.id),
        CHECKS.map((c) => c.id),
        'every documented check runs, in order',
      );
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('fails the container check with the command that builds a missing image', async () => {
    const { home, env } = tempHome();
    try {
      const results = await runChecks({
        env,
        cwd: home,
        image: 'localhost/errand-no-such-image:x',
      });
      const c = results.find((r) => r.id === 'container')!;
      assert.equal(c.status, 'fail');
      assert.equal(c.fix, 'bash scripts/base-image.sh');
      assert.match(
        formatChecks(results),
        /✗ a container actually starts.*\n\s+fix: bash scripts\/base-image.sh/,
      );
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('fails on an invalid config with file and line, and exits 1', async () => {
    const { home, env } = tempHome();
    try {
      const path = join(home, 'errand.yaml');
      writeFileSync(path, 'repos:\n  app:\n    git_url: /x\n    limits:\n      cpus: -1\n');
      const results = await runChecks({ configPath: path, env, cwd: home });
      const c = results.find((r) => r.id === 'config')!;
      assert.equal(c.status, 'fail');
      assert.match(
        c.detail,
        new RegExp(
          `${path}:5:\\d+: repos.app.limits.cpus: expected a number greater than 0, found -1`,
        ),
      );
      const r = await cli(['check', '--config', path], { env });
      assert.equal(r.code, 1);
      assert.match(r.stdout, /required check.* failed/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('warns, without failing, about an unreachable repository and a missing agent credential', async () => {
    const { home, env } = tempHome();
    try {
      const path = join(home, 'errand.yaml');
      writeFileSync(path, `repos:\n  gone:\n    git_url: ${join(home, 'nowhere.git')}\n`);
      const results = await runChecks({ configPath: path, env, cwd: home });
      assert.equal(results.find((r) => r.id === 'repos')!.status, 'warn');
      const agent = results.find((r) => r.id === 'agent')!;
      assert.equal(agent.status, 'warn');
      assert.match(agent.fix!, /repos\.gone\.agent\.api_key: !secret ANTHROPIC_API_KEY/);
      const r = await cli(['check', '--config', path], { env });
      assert.equal(r.code, 0, r.stdout);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
