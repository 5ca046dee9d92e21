/**
 * A running errand whose git_urls carry tokens, with its log captured: the clone of each
 * fails, the failure is answered in the thread, an edit puts a token-bearing URL where the
 * config refuses it, and no token (nor its first characters) appears in any page, API
 * answer, CLI output or log line.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { cli, freePort, startErrand, tempHome } from '../harness/cli.ts';

const TOKENS = {
  https: 'ghs_HttpsInstallationToken0123456789',
  git: 'ghs_GitProtocolToken9876543210',
  agent: 'sk-ant-api03-NotARealKey-0123456789',
};

interface Delivery {
  kind: string;
  state: string;
  text: string;
}

async function until<T>(what: string, check: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 600; i++) {
    const v = await check();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

it('shows a token in a git_url nowhere: not on pages, in API answers, errand status or check, nor in the log, even when the clone fails', async () => {
  const { home, env } = tempHome();
  const port = await freePort();
  const path = join(home, 'errand.yaml');
  // git strips the userinfo of an http URL from its messages itself; for git:// it quotes
  // "user:token@host" as the host name it could not look up.
  const config = (extra = '') => `dashboard:
  port: ${port}
repos:
  app:
    git_url: https://x-access-token:${TOKENS.https}@127.0.0.1:1/acme/app.git
    agent: { api_key: ${TOKENS.agent} }
${extra}  old:
    git_url: git://x-access-token:${TOKENS.git}@127.0.0.1:1/acme/old.git
    agent: { api_key: ${TOKENS.agent} }
`;
  writeFileSync(path, config(), { mode: 0o600 });
  const errand = await startErrand(['--config', path], {
    env: { ...env, ERRAND_LOG_LEVEL: 'debug' },
    cwd: home,
  });
  const seen: Array<[string, string]> = [];
  try {
    const base = `http://127.0.0.1:${port}`;
    const token = readFileSync(
      join(home, '.local', 'state', 'errand', 'control-token'),
      'utf8',
    ).trim();
    const headers = { authorization: `Bearer ${token}` };
    const get = async (p: string) => {
      const r = await fetch(`${base}${p}`, { headers });
      assert.equal(r.status, 200, p);
      const text = await r.text();
      seen.push([p, text]);
      return text;
    };
    for (const repo of ['app', 'old']) {
      const r = await fetch(`${base}/api/repos/${repo}/tasks`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ text: `update ${repo}` }),
      });
      assert.equal(r.status, 202);
    }
    const conversations = await until('both conversations', async () => {
      const list = JSON.parse(await get('/api/conversations')) as {
        conversations: Array<{ id: string; repoId: string }>;
      };
      return list.conversations.length === 2 ? list.conversations : undefined;
    });
    for (const c of conversations) {
      const answer = await until(`the failure reply of ${c.repoId}`, async () => {
        const body = JSON.parse(await get(`/api/conversations/${c.id}`)) as {
          deliveries: Delivery[];
          tasks: Array<{ id: string }>;
        };
        const d = body.deliveries.find((x) => x.kind === 'error' && x.state === 'sent');
        return d ? { delivery: d, tasks: body.tasks } : undefined;
      });
      // The clone failure reached the thread, with what git said.
      assert.match(answer.delivery.text, /errand could not update the repository: git clone/);
      if (c.repoId === 'old') assert.match(answer.delivery.text, /\*\*\*@127\.0\.0\.1:1/);
      await get(`/conversations/${c.id}`);
      await get(`/api/conversations/${c.id}/network`);
      for (const t of answer.tasks) {
        await get(`/tasks/${t.id}`);
        await get(`/api/tasks/${t.id}`);
        await get(`/api/tasks/${t.id}/events`);
      }
    }
    const repos = await get('/repos');
    assert.match(repos, /git_url: https:\/\/\*\*\*@127\.0\.0\.1:1\/acme\/app\.git/);
    await get('/');
    await get('/api/health');
    await get('/api/tasks');
    for (const args of [
      ['status'],
      ['status', '--json'],
      ['conversations', 'list'],
      ['conversations', 'show', conversations[0]!.id],
      ['conversations', 'show', conversations[1]!.id, '--json'],
      ['check'],
      ['check', '--json'],
    ]) {
      const r = await cli([...args, '--config', path], { env, timeoutMs: 300_000 });
      seen.push([`errand ${args.join(' ')}`, r.stdout + r.stderr]);
    }
    const check = seen.find(([what]) => what === 'errand check')![1];
    assert.match(
      check,
      /each repository is reachable with git(: |\n)[\s\S]*?old: /,
      'check says why',
    );

    // A URL pasted where a host name belongs: the config is refused, naming what was found.
    writeFileSync(
      path,
      config(
        `    masked_secrets:\n      GH_TOKEN: { value: x, hosts: ["https://x-access-token:${TOKENS.https}@api.github.com"] }\n`,
      ),
    );
    await until('the refused edit in the log', async () =>
      /config change ignored/.test(errand.stderr()) ? true : undefined,
    );
    assert.match(errand.stderr(), /masked_secrets\.GH_TOKEN\.hosts\.0: expected a host name/);
    for (const args of [['status'], ['check']]) {
      const r = await cli([...args, '--config', path], { env, timeoutMs: 300_000 });
      assert.match(r.stdout + r.stderr, /found "https:\/\/\*\*\*@api\.github\.com"/);
      seen.push([`errand ${args.join(' ')} (invalid config)`, r.stdout + r.stderr]);
    }
  } finally {
    assert.equal(await errand.stop(), 0, errand.stderr());
    rmSync(home, { recursive: true, force: true });
  }
  seen.push(['the log', errand.stderr()]);
  for (const [where, text] of seen) {
    for (const [name, value] of Object.entries(TOKENS)) {
      // Its first characters too: a value cut short to fit a message is still a leak.
      assert.ok(!text.includes(value.slice(0, 12)), `${where} shows the ${name} token`);
    }
  }
});
