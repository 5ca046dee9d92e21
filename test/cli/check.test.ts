import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CHECKS, formatChecks, runChecks } from '../../src/cli/check.ts';
import { cli, tempHome } from '../harness/cli.ts';
import { initRepo } from '../harness/git.ts';

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

  it('warns about a default branch without a network allowlist or a Containerfile, saying what to add', async () => {
    const { home, env } = tempHome();
    try {
      const bare = initRepo(join(home, 'bare'), { 'README.md': 'hi\n' });
      const ready = initRepo(join(home, 'ready'), {
        '.errand/network-allowlist.yaml': 'allow: []\n',
        '.errand/container/Containerfile': 'FROM localhost/errand-base:bookworm\n',
      });
      const path = join(home, 'errand.yaml');
      writeFileSync(
        path,
        `repos:\n  bare:\n    git_url: ${bare}\n  ready:\n    git_url: ${ready}\n`,
      );
      const results = await runChecks({ configPath: path, env, cwd: home });
      const trusted = results.find((r) => r.id === 'trusted')!;
      assert.equal(trusted.status, 'warn');
      assert.match(
        trusted.detail,
        /^bare: no \.errand\/network-allowlist\.yaml on main: no request may leave the sandbox.*add one/m,
      );
      assert.match(
        trusted.detail,
        /^bare: no \.errand\/container\/Containerfile on main: .*add one/m,
      );
      assert.doesNotMatch(trusted.detail, /ready/, 'the repository with both files is fine');
      assert.equal(results.find((r) => r.id === 'repos')!.status, 'ok');
      assert.match(formatChecks(results), /! each default branch has .*\n\s+bare: no/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("reports a repository reachable only through the user's git config as errand's clone sees it: unreachable", async () => {
    const { home, env } = tempHome();
    try {
      const real = initRepo(join(home, 'real'), { 'README.md': 'hi\n' });
      // ~/.gitconfig rewrites the URL: the user's git reaches it, errand's does not read it.
      writeFileSync(
        join(home, '.gitconfig'),
        `[url "${real}"]\n\tinsteadOf = https://git.invalid/acme/app.git\n`,
      );
      const path = join(home, 'errand.yaml');
      writeFileSync(
        path,
        `repos:\n  rewritten:\n    git_url: https://git.invalid/acme/app.git\n  direct:\n    git_url: ${real}\n`,
      );
      const results = await runChecks({ configPath: path, env, cwd: home });
      const repos = results.find((r) => r.id === 'repos')!;
      assert.equal(repos.status, 'warn');
      assert.match(repos.detail, /^rewritten: git clone --mirror failed for repository rewritten/m);
      assert.doesNotMatch(repos.detail, /direct/, 'the neighbour errand can clone passes');
      assert.match(repos.fix!, /reads no ~\/\.gitconfig/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("shows git's whole error, not only its last line", async () => {
    const { home, env } = tempHome();
    try {
      const path = join(home, 'errand.yaml');
      writeFileSync(path, `repos:\n  gone:\n    git_url: file://${join(home, 'nowhere.git')}\n`);
      const results = await runChecks({ configPath: path, env, cwd: home });
      const repos = results.find((r) => r.id === 'repos')!;
      assert.equal(repos.status, 'warn');
      // git's first line says why; its last is advice.
      assert.match(repos.detail, /does not appear to be a git repository/);
      assert.match(repos.detail, /Could not read from remote repository/);
      assert.match(repos.detail, /and the repository exists/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
