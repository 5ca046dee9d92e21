import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type ConfigLoadResult, loadServerConfig } from '../../src/config/index.ts';
import { ALIAS_BOMB, DEEP_NESTING } from '../harness/hostile-yaml.ts';

const dir = mkdtempSync(join(tmpdir(), 'errand-cfgerr-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function load(yaml: string, env: NodeJS.ProcessEnv = {}): Promise<ConfigLoadResult> {
  const path = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(path, yaml);
  return await loadServerConfig({ path, env });
}

const REPO = 'repos:\n  app:\n    git_url: /srv/app.git\n';
const EMAIL = (extra: string) =>
  `${REPO}    email:\n      address: e@example.com\n      imap: { host: imap.example.com, port: 993, security: tls, user: u, password: p }\n      smtp: { host: smtp.example.com, port: 465, security: tls, user: u, password: p }\n      authorized_senders: [a@example.com]\n${extra}`;
const SCHEDULE = (body: string) => `${REPO}    schedules:\n      nightly:\n${body}`;

/** Each row: a broken file, and the line, key and words its one error must name. */
const CASES: Array<{ name: string; yaml: string; line: number; key: string; says: RegExp }> = [
  {
    name: 'an unknown top-level key',
    yaml: 'executon:\n  max_concurrent: 2\n',
    line: 1,
    key: 'executon',
    says: /no such key.*found unknown key "executon"/,
  },
  {
    name: 'a misspelt nested key',
    yaml: `${REPO}    limits:\n      memroy: 4g\n`,
    line: 5,
    key: 'repos.app.limits.memroy',
    says: /no such key/,
  },
  {
    name: 'a wrong type',
    yaml: 'execution:\n  max_concurrent: many\n',
    line: 2,
    key: 'execution.max_concurrent',
    says: /expected a number, found "many"/,
  },
  {
    name: 'a number out of range',
    yaml: 'dashboard:\n  port: 70000\n',
    line: 2,
    key: 'dashboard.port',
    says: /at most 65535, found 70000/,
  },
  {
    name: 'a missing required key',
    yaml: 'repos:\n  app:\n    model: x\n',
    line: 3,
    key: 'repos.app.git_url',
    says: /found nothing \(the key is missing\)/,
  },
  {
    name: 'a bad repository id',
    yaml: 'repos:\n  "../evil":\n    git_url: /x\n',
    line: 2,
    key: 'repos.../evil',
    says: /repository id/,
  },
  {
    name: 'a bad cron expression',
    yaml: SCHEDULE('        cron: "61 * * * *"\n        prompt: p\n        channel: web\n'),
    line: 6,
    key: 'repos.app.schedules.nightly.cron',
    says: /valid cron expression/,
  },
  {
    name: 'a bad time zone',
    yaml: SCHEDULE(
      '        cron: "0 6 * * *"\n        timezone: Mars/Olympus\n        prompt: p\n        channel: web\n',
    ),
    line: 7,
    key: 'repos.app.schedules.nightly.timezone',
    says: /IANA time zone/,
  },
  {
    name: 'both prompt and command',
    yaml: SCHEDULE(
      '        cron: "0 6 * * *"\n        prompt: p\n        command: c\n        channel: web\n',
    ),
    line: 8,
    key: 'repos.app.schedules.nightly.command',
    says: /exactly one of prompt and command/,
  },
  {
    name: 'a schedule on a channel the repository lacks',
    yaml: SCHEDULE(
      '        cron: "0 6 * * *"\n        prompt: p\n        channel: email\n        to: a@example.com\n',
    ),
    line: 8,
    key: 'repos.app.schedules.nightly.channel',
    says: /email channel configured/,
  },
  {
    name: 'email without a way to verify senders',
    yaml: EMAIL(''),
    line: 5,
    key: 'repos.app.email.trusted_authserv_id',
    says: /trusted_authserv_id or verify_dkim/,
  },
  {
    name: 'plaintext mail to a non-loopback host',
    yaml: EMAIL('      verify_dkim: true\n').replace(
      'imap.example.com, port: 993, security: tls',
      'imap.example.com, port: 143, security: none',
    ),
    line: 6,
    key: 'repos.app.email.imap.security',
    says: /only for a loopback host/,
  },
  {
    name: 'two repositories sharing one mailbox',
    yaml: `${EMAIL('      verify_dkim: true\n')}  other:\n    git_url: /srv/o.git\n    email:\n      address: E@example.com\n      imap: { host: i, port: 993, security: tls, user: u, password: p }\n      smtp: { host: s, port: 465, security: tls, user: u, password: p }\n      authorized_senders: [a@example.com]\n      verify_dkim: true\n`,
    line: 13,
    key: 'repos.other.email.address',
    says: /mailbox of its own \(repository app/,
  },
  {
    name: 'a masked secret with a lower-case name',
    yaml: `${REPO}    masked_secrets:\n      gh_token: { value: x, hosts: [github.com] }\n`,
    line: 5,
    key: 'repos.app.masked_secrets.gh_token',
    says: /upper-case environment variable name/,
  },
  {
    name: 'a server tool errand does not know (the MCP connector is never one)',
    yaml: `${REPO}    agent:\n      server_tools: [web_search, mcp_servers]\n`,
    line: 5,
    key: 'repos.app.agent.server_tools.1',
    says: /expected one of "web_search", "web_fetch", "code_execution", found "mcp_servers"/,
  },
  {
    name: 'cleartext credentials allowed for a host not mapped in network.resolve',
    yaml: `${REPO}    network:\n      resolve: { git.internal: "10.1.2.3" }\n      cleartext_credentials: [git.internal, api.github.com]\n`,
    line: 6,
    key: 'repos.app.network.cleartext_credentials.1',
    says: /a host mapped in network\.resolve/,
  },
  {
    name: 'a dashboard.token shorter than 20 characters, without showing it',
    yaml: 'dashboard:\n  token: short-token-123\n',
    line: 2,
    key: 'dashboard.token',
    says: /a login token of at least 20 characters.*found a string \(value hidden\)$/,
  },
  {
    name: 'a token in dashboard.users shorter than 20 characters, without showing it',
    yaml: 'dashboard:\n  users:\n    alice: alice-short-123\n',
    line: 3,
    key: 'dashboard.users.alice',
    says: /a login token of at least 20 characters.*found a string \(value hidden\)$/,
  },
  {
    name: 'a YAML syntax error',
    yaml: 'execution:\n  max_concurrent: [1\n',
    line: 3,
    key: '',
    says: /expected valid YAML/,
  },
  {
    name: 'an unknown tag',
    yaml: 'execution:\n  max_concurrent: !vault X\n',
    line: 2,
    key: '',
    says: /only the tags !env and !secret/,
  },
];

describe('config errors name file, line, key, expectation and what was found', () => {
  for (const c of CASES) {
    it(`reports ${c.name}`, async () => {
      const r = await load(c.yaml);
      assert.equal(r.status, 'invalid', JSON.stringify(r));
      if (r.status !== 'invalid') return;
      const issue = r.issues.find((i) => i.key === c.key);
      assert.ok(issue, `an issue for key "${c.key}" in ${JSON.stringify(r.issues)}`);
      assert.equal(issue.line, c.line, issue.message);
      assert.ok(issue.message.startsWith(`${r.path}:${c.line}:`), issue.message);
      assert.match(issue.message, c.says);
    });
  }

  it('accepts the neighbour of each broken row: a full valid config with defaults filled in', async () => {
    const r = await load(
      `execution:\n  max_concurrent: 2\n${EMAIL('      verify_dkim: true\n')}    schedules:\n      nightly:\n        cron: "0 6 * * 1-5"\n        timezone: Europe/Berlin\n        prompt: p\n        channel: email\n        to: a@example.com\n    masked_secrets:\n      GH_TOKEN: { value: ghp_x, hosts: [github.com, "*.github.com"] }\n    network:\n      resolve: { git.internal: "10.1.2.3" }\n      cleartext_credentials: [GIT.internal]\n`,
    );
    assert.equal(r.status, 'ok', JSON.stringify(r));
    if (r.status !== 'ok') return;
    const app = r.config.repos.app!;
    assert.equal(r.config.execution.max_concurrent, 2);
    assert.equal(r.config.execution.retention_days, 30);
    assert.equal(r.config.dashboard.port, 5200);
    assert.equal(app.model, 'claude-sonnet-4-5');
    assert.equal(app.email!.imap.folder, 'INBOX');
    assert.equal(app.limits.timeout_seconds, 3600);
    assert.deepEqual(app.masked_secrets.GH_TOKEN!.headers, ['Authorization']);
    assert.equal(app.web.enabled, true);
    assert.equal(app.network.sandbox, true);
    assert.deepEqual(app.network.cleartext_credentials, ['GIT.internal']);
  });

  it('accepts login tokens of 20 characters, the shortest allowed', async () => {
    const r = await load(
      'dashboard:\n  token: abcdefghij0123456789\n  users: { alice: ABCDEFGHIJ0123456789 }\n',
    );
    assert.equal(r.status, 'ok', JSON.stringify(r));
    if (r.status !== 'ok') return;
    assert.equal(r.config.dashboard.token!.reveal(), 'abcdefghij0123456789');
    assert.equal(r.config.dashboard.users.alice!.reveal(), 'ABCDEFGHIJ0123456789');
  });
});

describe("a config file past errand's YAML limits is refused, naming the file and the limit", () => {
  const cases: [name: string, yaml: string, says: RegExp][] = [
    [
      'an alias bomb',
      ALIAS_BOMB,
      /its aliases \(\*name\) expand past errand's limit of 100 alias uses/,
    ],
    ['deep nesting', DEEP_NESTING, /nested more than 64 levels deep/],
    [
      'a file over 1 MiB',
      `${REPO}${'# padding\n'.repeat(120_000)}`,
      /is 1200040 bytes, more than the 1 MiB/,
    ],
  ];
  for (const [name, yaml, says] of cases) {
    it(`reports ${name}`, async () => {
      const r = await load(yaml);
      assert.equal(r.status, 'invalid', JSON.stringify(r).slice(0, 300));
      if (r.status !== 'invalid') return;
      assert.equal(r.issues.length, 1);
      assert.ok(r.issues[0]!.message.startsWith(`${r.path}: `), r.issues[0]!.message);
      assert.match(r.issues[0]!.message, says);
    });
  }
});
