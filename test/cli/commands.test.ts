import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadServerConfig } from '../../src/config/index.ts';
import { cli, freePort, gitCheckout, startErrand, tempHome } from '../harness/cli.ts';
import { git } from '../harness/git.ts';

/** Why an immutable file cannot be made here (it takes root and a file system with flags). */
function chattrSkip(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to make a file immutable (chattr +i)';
  const probe = join(tmpdir(), `errand-chattr-${process.pid}`);
  writeFileSync(probe, '');
  try {
    const r = spawnSync('chattr', ['+i', probe]);
    spawnSync('chattr', ['-i', probe]);
    return r.status === 0 ? undefined : 'chattr +i does not work on the temp folder here';
  } finally {
    rmSync(probe, { force: true });
  }
}

describe('the errand command', () => {
  it('lists its commands with --help and exits 0', async () => {
    const { home, env } = tempHome();
    try {
      const r = await cli(['--help'], { env });
      assert.equal(r.code, 0);
      for (const c of [
        'init',
        'check',
        'start',
        'install-service',
        'uninstall-service',
        'status',
        'stop',
        'conversations',
      ]) {
        assert.match(r.stdout, new RegExp(`\\n\\s+${c}\\b`), `--help lists ${c}`);
      }
      assert.match(r.stdout, /Exit codes:/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('gives every command its own --help with exit codes', async () => {
    const { home, env } = tempHome();
    try {
      for (const c of [
        ['init'],
        ['check'],
        ['start'],
        ['status'],
        ['stop'],
        ['conversations', 'list'],
        ['conversations', 'show'],
        ['conversations', 'delete'],
        ['install-service'],
      ]) {
        const r = await cli([...c, '--help'], { env });
        assert.equal(r.code, 0, `${c.join(' ')} --help`);
        assert.match(r.stdout, /Usage: errand/);
        assert.match(r.stdout, /Exit codes:/, `${c.join(' ')} --help documents exit codes`);
      }
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('exits 2 on an unknown command or option, without a stack trace', async () => {
    const { home, env } = tempHome();
    try {
      const a = await cli(['frobnicate'], { env });
      assert.equal(a.code, 2);
      assert.match(a.stderr, /unknown command/);
      const b = await cli(['status', '--bogus'], { env });
      assert.equal(b.code, 2);
      assert.doesNotMatch(a.stderr + b.stderr, /\n\s+at /);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('init writes a starter config that loads, and a private secrets file; a second init needs --force', async () => {
    const { home, env } = tempHome();
    try {
      const project = gitCheckout(home);
      const r = await cli(['init'], { env, cwd: project });
      assert.equal(r.code, 0, r.stderr);
      const path = join(home, '.config', 'errand', 'errand.yaml');
      assert.ok(existsSync(path));
      assert.match(readFileSync(path, 'utf8'), new RegExp(`project:\\n    git_url: "${project}"`));
      assert.match(r.stderr, /has no origin remote: repos\.project\.git_url is its local path/);
      assert.equal(statSync(join(home, '.config', 'errand', 'secrets.env')).mode & 0o777, 0o600);
      const loaded = await loadServerConfig({ path, env: {} });
      assert.equal(loaded.status, 'ok', JSON.stringify(loaded));
      const again = await cli(['init'], { env, cwd: project });
      assert.equal(again.code, 2);
      assert.match(again.stderr, /exists already.*--force/);
      assert.equal((await cli(['init', '--force'], { env, cwd: project })).code, 0);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("init names the repository after its folder and writes origin's URL as git_url", async () => {
    const { home, env } = tempHome();
    try {
      const project = gitCheckout(home, 'widget');
      git(project, 'remote', 'add', 'origin', 'git@git.example.com:acme/widget.git');
      const r = await cli(['init'], { env, cwd: join(project) });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '', 'no warning with an origin');
      const path = join(home, '.config', 'errand', 'errand.yaml');
      const loaded = await loadServerConfig({ path, env: {} });
      assert.equal(loaded.status, 'ok', JSON.stringify(loaded));
      if (loaded.status !== 'ok') return;
      assert.deepEqual(Object.keys(loaded.config.repos), ['widget']);
      assert.equal(loaded.config.repos.widget!.git_url, 'git@git.example.com:acme/widget.git');
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it("init keeps a token in origin's URL out of errand.yaml and out of what it prints: it goes to secrets.env", async () => {
    const { home, env } = tempHome();
    const token = 'ghp_InitMustNotEchoThis0123456789';
    const url = `https://x-access-token:${token}@github.com/acme/app.git`;
    try {
      const project = gitCheckout(home, 'app');
      git(project, 'remote', 'add', 'origin', url);
      const r = await cli(['init'], { env, cwd: project });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!(r.stdout + r.stderr).includes(token), 'init does not print the token');
      assert.match(r.stdout, /went to .*secrets\.env as GIT_URL/);
      const dir = join(home, '.config', 'errand');
      const yaml = readFileSync(join(dir, 'errand.yaml'), 'utf8');
      assert.ok(!yaml.includes(token), 'errand.yaml does not hold the token');
      assert.match(yaml, /git_url: !secret GIT_URL/);
      assert.equal(statSync(join(dir, 'secrets.env')).mode & 0o777, 0o600);
      const loaded = await loadServerConfig({ path: join(dir, 'errand.yaml'), env: {} });
      assert.equal(loaded.status, 'ok', JSON.stringify(loaded));
      if (loaded.status === 'ok') assert.equal(loaded.config.repos.app!.git_url, url);
      // A second init finds the URL in secrets.env and leaves the file alone.
      const before = readFileSync(join(dir, 'secrets.env'), 'utf8');
      const again = await cli(['init', '--force'], { env, cwd: project });
      assert.equal(again.code, 0, again.stderr);
      assert.equal(readFileSync(join(dir, 'secrets.env'), 'utf8'), before);
      // A token in a query parameter is a credential too.
      const queried = gitCheckout(home, 'queried');
      git(
        queried,
        'remote',
        'add',
        'origin',
        `https://git.example.com/acme/q.git?access_token=${token}`,
      );
      rmSync(join(dir, 'secrets.env'));
      const q = await cli(['init', '--force'], { env, cwd: queried });
      assert.equal(q.code, 0, q.stderr);
      assert.ok(!(q.stdout + q.stderr).includes(token));
      assert.ok(!readFileSync(join(dir, 'errand.yaml'), 'utf8').includes(token));
      assert.match(
        readFileSync(join(dir, 'secrets.env'), 'utf8'),
        /^GIT_URL='https:\/\/git\.example\.com\/acme\/q\.git\?access_token=/m,
      );
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('init outside a git checkout warns that git_url names no repository', async () => {
    const { home, env } = tempHome();
    try {
      const r = await cli(['init'], { env, cwd: home });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /is not inside a git checkout: .*Set it to the repository's URL/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('exits 3 with file, line and key when the config is invalid', async () => {
    const { home, env } = tempHome();
    try {
      const path = join(home, 'bad.yaml');
      writeFileSync(path, 'execution:\n  max_concurrent: many\n');
      const r = await cli(['status', '--config', path], { env });
      assert.equal(r.code, 3);
      assert.match(
        r.stderr,
        new RegExp(`${path}:2:\\d+: execution.max_concurrent: expected a number, found "many"`),
      );
      const missing = await cli(['status', '--config', join(home, 'nope.yaml')], { env });
      assert.equal(missing.code, 3);
      assert.match(missing.stderr, /errand init --config/);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('starts on embedded defaults inside a git checkout, takes a web task, and shows it in status and conversations', async () => {
    const { home, env } = tempHome();
    const project = gitCheckout(home, 'demo-app');
    const port = await freePort();
    const path = join(home, 'errand.yaml');
    writeFileSync(path, `dashboard:\n  port: ${port}\nrepos:\n  demo:\n    git_url: ${project}\n`);
    const errand = await startErrand(['--config', path], { env, cwd: project });
    try {
      assert.match(errand.stderr(), /repos: {2}demo/);
      const token = readFileSync(
        join(home, '.local', 'state', 'errand', 'control-token'),
        'utf8',
      ).trim();
      assert.equal(
        statSync(join(home, '.local', 'state', 'errand', 'control-token')).mode & 0o777,
        0o600,
      );
      const health = (await (await fetch(`http://127.0.0.1:${port}/api/health`)).json()) as {
        status: string;
        channels: unknown[];
      };
      assert.equal(health.status, 'ok');
      const overview = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(overview.status, 200);
      assert.match(
        await overview.text(),
        /New task for demo/,
        'the dashboard on embedded defaults',
      );
      assert.deepEqual(health.channels, [
        {
          repo: 'demo',
          channel: 'web',
          state: 'connected',
          since: (health.channels[0] as { since: number }).since,
        },
      ]);
      const unauth = await fetch(`http://127.0.0.1:${port}/api/repos/demo/tasks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"text":"hi"}',
      });
      assert.equal(unauth.status, 401);
      const res = await fetch(`http://127.0.0.1:${port}/api/repos/demo/tasks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ text: 'fix the build' }),
      });
      assert.equal(res.status, 202);
      let list = '';
      for (let i = 0; i < 100 && !/fix the build/.test(list); i++) {
        list = (await cli(['conversations', 'list', '--config', path], { env })).stdout;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(list, /c_\S+\s+demo\s+web\s+\S+\s+fix the build/);
      const id = /(c_\S+)/.exec(list)![1]!;
      let shown = '';
      for (let i = 0; i < 100 && !/errand error \[sent\]/.test(shown); i++) {
        shown = (await cli(['conversations', 'show', id, '--config', path], { env })).stdout;
        await new Promise((r) => setTimeout(r, 100));
      }
      // Embedded defaults without ANTHROPIC_API_KEY: the task is answered with what to set.
      assert.match(
        shown,
        /No model credential is configured for demo, so no agent can run\. .*ANTHROPIC_API_KEY in its environment/,
      );
      const status = (await cli(['status', '--config', path], { env })).stdout;
      assert.match(status, /No tasks running or queued/);
      assert.match(status, /demo\s+web\s+connected/, 'channel health from the running errand');
      const stopMissing = await cli(['stop', 't_doesnotexist', '--config', path], { env });
      assert.equal(stopMissing.code, 5, stopMissing.stderr);
      const notAnId = await cli(['stop', '../etc', '--config', path], { env });
      assert.equal(notAnId.code, 2);
      const showMissing = await cli(['conversations', 'show', 'c_nope', '--config', path], { env });
      assert.equal(showMissing.code, 5);
    } finally {
      assert.equal(await errand.stop(), 0, errand.stderr());
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('says errand is not running (exit 4) when stop finds no server', async () => {
    const { home, env } = tempHome();
    try {
      const port = await freePort();
      const path = join(home, 'errand.yaml');
      writeFileSync(path, `dashboard:\n  port: ${port}\n`);
      const r = await cli(['stop', 't_abc', '--config', path], { env });
      assert.equal(r.code, 4);
      assert.match(r.stderr, /errand start/);
      const status = await cli(['status', '--config', path], { env });
      assert.equal(status.code, 4, 'status exits 4 like its help says');
      assert.match(status.stdout, /errand is not running \(start it with: errand start\)/);
      assert.match(status.stdout, /No tasks running or queued/);
      const json = await cli(['status', '--json', '--config', path], { env });
      assert.equal(json.code, 4);
      assert.equal(JSON.parse(json.stdout).channels, null);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('exits 2 for errand sandbox without a subcommand or with an unknown one', async () => {
    const { home, env } = tempHome();
    try {
      const bare = await cli(['sandbox'], { env, cwd: home });
      assert.equal(bare.code, 2);
      assert.match(bare.stderr, /Usage: errand sandbox/);
      const unknown = await cli(['sandbox', 'frobnicate'], { env, cwd: home });
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /unknown command/);
      assert.equal((await cli(['sandbox', '--help'], { env, cwd: home })).code, 0);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('looks at conversations and status without creating the state folder', async () => {
    const { home, env } = tempHome();
    try {
      const port = await freePort();
      const path = join(home, 'errand.yaml');
      const state = join(home, 'state');
      writeFileSync(path, `dashboard:\n  port: ${port}\nexecution:\n  state_dir: ${state}\n`);
      const list = await cli(['conversations', 'list', '--config', path], { env, cwd: home });
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /No conversations stored yet/);
      const json = await cli(['conversations', 'list', '--json', '--config', path], { env });
      assert.deepEqual(JSON.parse(json.stdout), []);
      const show = await cli(['conversations', 'show', 'c_nope', '--config', path], { env });
      assert.equal(show.code, 5);
      const status = await cli(['status', '--config', path], { env, cwd: home });
      assert.equal(status.code, 4);
      assert.match(status.stdout, /No tasks running or queued/);
      assert.equal(existsSync(state), false, 'the state folder was not created');
      assert.equal(existsSync(join(home, '.local')), false, 'nor the default one');
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
  it('conversations delete reports a conversation whose folders cannot be deleted (exit 1, in status and on the dashboard) and deletes it once they can be', {
    skip: chattrSkip(),
  }, async () => {
    const { home, env } = tempHome();
    const project = gitCheckout(home, 'demo-app');
    const port = await freePort();
    const path = join(home, 'errand.yaml');
    const sandboxes = join(home, 'sandboxes');
    writeFileSync(
      path,
      `dashboard:\n  port: ${port}\nexecution:\n  sandbox_dir: ${sandboxes}\nrepos:\n  demo:\n    git_url: ${project}\n`,
    );
    const errand = await startErrand(['--config', path], { env, cwd: project });
    const pinned = { path: '' };
    try {
      const token = readFileSync(
        join(home, '.local', 'state', 'errand', 'control-token'),
        'utf8',
      ).trim();
      const res = await fetch(`http://127.0.0.1:${port}/api/repos/demo/tasks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ text: 'keep me' }),
      });
      assert.equal(res.status, 202);
      let shown = '';
      let id = '';
      for (let i = 0; i < 200 && !/errand error \[sent\]/.test(shown); i++) {
        const list = (await cli(['conversations', 'list', '--config', path], { env })).stdout;
        id = /(c_\S+)/.exec(list)?.[1] ?? '';
        if (id)
          shown = (await cli(['conversations', 'show', id, '--config', path], { env })).stdout;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(id, 'the conversation exists');
      // A file nobody but root may remove, even root only once its flag is cleared.
      const workspace = join(sandboxes, 'conversations', 'demo', id, 'workspace');
      mkdirSync(workspace, { recursive: true });
      pinned.path = join(workspace, 'pinned');
      writeFileSync(pinned.path, 'immutable');
      execFileSync('chattr', ['+i', pinned.path]);
      const failed = await cli(['conversations', 'delete', id, '--config', path], { env });
      assert.equal(failed.code, 1, failed.stderr);
      assert.match(
        failed.stderr,
        new RegExp(
          `^errand: conversation ${id} could not be deleted: 1 entry was not removed: errand’s user may not remove them\\. It is kept and tried again at every retention sweep`,
        ),
      );
      assert.doesNotMatch(failed.stderr, /\n\s+at /);
      const status = (await cli(['status', '--config', path], { env })).stdout;
      assert.match(status, /Conversations that could not be deleted/);
      assert.match(status, new RegExp(`${id}\\s+demo\\s+\\S+\\s+1\\s+1 entry was not removed`));
      const overview = await (await fetch(`http://127.0.0.1:${port}/`)).text();
      assert.match(overview, /Conversations that could not be deleted/);
      assert.match(overview, new RegExp(`href="/conversations/${id}"`));
      assert.equal(
        (await cli(['conversations', 'show', id, '--config', path], { env })).code,
        0,
        'kept in the store',
      );
      execFileSync('chattr', ['-i', pinned.path]);
      pinned.path = '';
      const deleted = await cli(['conversations', 'delete', id, '--config', path], { env });
      assert.equal(deleted.code, 0, deleted.stderr);
      assert.equal(deleted.stdout, `Deleted ${id}.\n`);
      assert.equal(existsSync(join(sandboxes, 'conversations', 'demo', id)), false);
      assert.equal((await cli(['conversations', 'show', id, '--config', path], { env })).code, 5);
      assert.doesNotMatch(
        (await cli(['status', '--config', path], { env })).stdout,
        /could not be deleted/,
      );
      assert.equal((await cli(['conversations', 'delete', id, '--config', path], { env })).code, 5);
      assert.equal(
        (await cli(['conversations', 'delete', '../etc', '--config', path], { env })).code,
        2,
      );
    } finally {
      if (pinned.path) execFileSync('chattr', ['-i', pinned.path]);
      assert.equal(await errand.stop(), 0, errand.stderr());
      rmSync(home, { recursive: true, force: true });
    }
  });
});
