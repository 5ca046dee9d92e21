import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { inspect } from 'node:util';
import {
  type ConfigLoadResult,
  changedRepos,
  formatConfigIssues,
  loadServerConfig,
  starterConfig,
  watchConfig,
} from '../../src/config/index.ts';

const SECRET_VALUE = 'sk-ant-THIS-MUST-NEVER-BE-PRINTED-42';
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'errand-tags-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string, mode = 0o600): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

const withAgent = (tag: string) =>
  `repos:\n  app:\n    git_url: /srv/app.git\n    agent:\n      api_key: ${tag}\n`;

describe('!env and !secret', () => {
  it('take !env from the environment, and from .env beside the config when unset there', async () => {
    write('.env', 'FROM_FILE=file-value\nBOTH=file\n');
    const path = write(
      'errand.yaml',
      'repos:\n  app:\n    git_url: !env FROM_FILE\n    model: !env BOTH\n',
    );
    const r = await loadServerConfig({ path, env: { BOTH: 'environment' } });
    assert.equal(r.status, 'ok', JSON.stringify(r));
    if (r.status !== 'ok') return;
    assert.equal(r.config.repos.app!.git_url, 'file-value');
    assert.equal(r.config.repos.app!.model, 'environment', 'the real environment wins over .env');
  });

  it('take !secret from secrets.env and keep it out of printing, JSON and inspection', async () => {
    write('secrets.env', `ANTHROPIC_API_KEY=${SECRET_VALUE}\n`);
    const path = write('errand.yaml', withAgent('!secret ANTHROPIC_API_KEY'));
    const r = await loadServerConfig({ path, env: {} });
    assert.equal(r.status, 'ok', JSON.stringify(r));
    if (r.status !== 'ok') return;
    assert.equal(r.config.repos.app!.agent.api_key!.reveal(), SECRET_VALUE);
    assert.doesNotMatch(JSON.stringify(r.config), /NEVER-BE-PRINTED/);
    assert.doesNotMatch(inspect(r.config, { depth: 10 }), /NEVER-BE-PRINTED/);
    assert.doesNotMatch(String(r.config.repos.app!.agent.api_key), /NEVER-BE-PRINTED/);
  });

  it('refuse a secrets file that others can read, and say how to fix it', async () => {
    write('secrets.env', `ANTHROPIC_API_KEY=${SECRET_VALUE}\n`, 0o644);
    const path = write('errand.yaml', withAgent('!secret ANTHROPIC_API_KEY'));
    const r = await loadServerConfig({ path, env: {} });
    assert.equal(r.status, 'invalid');
    const text = r.status === 'invalid' ? formatConfigIssues(r.issues) : '';
    assert.match(text, /readable by other users.*chmod 600 .*secrets\.env/);
    assert.doesNotMatch(text, /NEVER-BE-PRINTED/);
  });

  it('name a missing variable or secret with its line and key, never a value', async () => {
    write('secrets.env', 'OTHER=x\n');
    const path = write(
      'errand.yaml',
      `${withAgent('!secret ANTHROPIC_API_KEY')}    env:\n      X: !env NOT_SET_ANYWHERE\n`,
    );
    const r = await loadServerConfig({ path, env: {} });
    assert.equal(r.status, 'invalid');
    if (r.status !== 'invalid') return;
    const byKey = new Map(r.issues.map((i) => [i.key, i]));
    assert.equal(byKey.get('repos.app.agent.api_key')!.line, 5);
    assert.match(
      byKey.get('repos.app.agent.api_key')!.message,
      /secret ANTHROPIC_API_KEY in .*secrets\.env/,
    );
    assert.equal(byKey.get('repos.app.env.X')!.line, 7);
    assert.match(
      byKey.get('repos.app.env.X')!.message,
      /environment variable NOT_SET_ANYWHERE to be set/,
    );
  });

  it('never print a secret that fails validation', async () => {
    write('secrets.env', `SLACK=${SECRET_VALUE}\n`);
    const path = write(
      'errand.yaml',
      'repos:\n  app:\n    git_url: /x\n    slack:\n      app_token: !secret SLACK\n      bot_token: !secret SLACK\n      authorized: { users: [U1] }\n',
    );
    const r = await loadServerConfig({ path, env: {} });
    assert.equal(r.status, 'invalid');
    const text = r.status === 'invalid' ? formatConfigIssues(r.issues) : '';
    assert.match(
      text,
      /repos\.app\.slack\.app_token: expected an app-level token starting with xapp-/,
    );
    assert.doesNotMatch(text, /NEVER-BE-PRINTED/);
  });
});

describe('loading', () => {
  it('reports an explicitly named file that does not exist as missing', async () => {
    const r = await loadServerConfig({ path: join(dir, 'nope.yaml'), env: {} });
    assert.deepEqual(r, { status: 'missing', path: join(dir, 'nope.yaml') });
  });

  it('falls back to embedded defaults with the current git checkout as the repository', async () => {
    const project = join(dir, 'My Project');
    mkdirSync(project);
    execFileSync('git', ['init', '-q'], { cwd: project });
    const env = { HOME: dir, XDG_CONFIG_HOME: join(dir, 'cfg') };
    const r = await loadServerConfig({ env, cwd: project });
    assert.equal(r.status, 'ok');
    if (r.status !== 'ok') return;
    assert.equal(r.source, 'defaults');
    assert.deepEqual(Object.keys(r.config.repos), ['My-Project']);
    assert.equal(r.config.repos['My-Project']!.git_url, project);
    assert.equal(r.config.dashboard.host, '127.0.0.1');
    assert.equal(r.config.dashboard.port, 5200);
  });

  it('takes the agent credential from ANTHROPIC_API_KEY on embedded defaults, without showing it', async () => {
    const project = join(dir, 'keyed');
    mkdirSync(project);
    execFileSync('git', ['init', '-q'], { cwd: project });
    const key = 'sk-ant-api03-FromTheEnvironment0123456789';
    const env = { HOME: dir, XDG_CONFIG_HOME: join(dir, 'cfg'), ANTHROPIC_API_KEY: key };
    const r = await loadServerConfig({ env, cwd: project });
    assert.equal(r.status, 'ok');
    if (r.status !== 'ok') return;
    const agent = r.config.repos.keyed!.agent;
    assert.equal(agent.api_key?.reveal(), key);
    assert.doesNotMatch(JSON.stringify(r.config), /FromTheEnvironment/);
  });

  it('has no repository on embedded defaults outside a git checkout', async () => {
    const r = await loadServerConfig({
      env: { HOME: dir, XDG_CONFIG_HOME: join(dir, 'cfg') },
      cwd: dir,
    });
    assert.equal(r.status, 'ok');
    if (r.status === 'ok') assert.deepEqual(r.config.repos, {});
  });

  it('loads the starter config errand init writes', async () => {
    const path = write(
      'errand.yaml',
      starterConfig({ id: 'project', gitUrl: '"/srv/project"' }),
      0o644,
    );
    const r = await loadServerConfig({ path, env: {} });
    assert.equal(r.status, 'ok', JSON.stringify(r));
  });
});

describe('reload', () => {
  it('tells which repositories were added, removed or changed, comparing secrets by value', async () => {
    write('secrets.env', 'K=one\n');
    const a = await loadServerConfig({
      path: write('a.yaml', `${withAgent('!secret K')}  gone:\n    git_url: /g\n`),
      env: {},
    });
    write('secrets.env', 'K=two\n');
    const b = await loadServerConfig({
      path: write('b.yaml', `${withAgent('!secret K')}  new:\n    git_url: /n\n`),
      env: {},
    });
    assert.ok(a.status === 'ok' && b.status === 'ok');
    assert.deepEqual(changedRepos(a.config, b.config), {
      added: ['new'],
      removed: ['gone'],
      changed: ['app'],
    });
    assert.deepEqual(changedRepos(a.config, a.config), { added: [], removed: [], changed: [] });
  });

  it('notices an edit of the config file, including one saved by renaming a new file over it', async () => {
    const path = write('errand.yaml', 'execution:\n  max_concurrent: 1\n', 0o644);
    const seen: ConfigLoadResult[] = [];
    const w = watchConfig(path, (r) => seen.push(r), 50);
    try {
      const waitFor = async (n: number) => {
        for (let i = 0; i < 200 && seen.length < n; i++)
          await new Promise((r) => setTimeout(r, 25));
        assert.ok(seen.length >= n, `expected ${n} reloads, saw ${seen.length}`);
      };
      writeFileSync(path, 'execution:\n  max_concurrent: 2\n');
      await waitFor(1);
      const last = seen.at(-1)!;
      assert.ok(last.status === 'ok' && last.config.execution.max_concurrent === 2);
      writeFileSync(join(dir, 'errand.yaml.tmp'), 'execution:\n  max_concurrent: nope\n');
      renameSync(join(dir, 'errand.yaml.tmp'), path);
      await waitFor(2);
      assert.equal(seen.at(-1)!.status, 'invalid', 'an invalid edit is reported, not applied');
    } finally {
      w.close();
    }
  });
});
