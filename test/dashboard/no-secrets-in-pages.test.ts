import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { type DashboardFixture, dashboardFixture } from '../harness/dashboard-fixture.ts';
import { eventually } from '../harness/gateway-fixture.ts';
import { LiveExecutor } from '../harness/live-executor.ts';

/** Credentials in the config; none may appear in any page or API answer. */
const SECRETS = {
  gh: 'ghp_KnownSecretValue0123456789abcdefABCD',
  api: 'sk-ant-api03-KnownAgentKey-0123456789',
  imap: 'imap-KnownPassword-4711',
  smtp: 'smtp-KnownPassword-4712',
  aws: 'KnownAwsSecretAccessKey/0123456789abcdefghij',
  dash: 'dashboard-KnownToken-98765',
  carol: 'carol-KnownToken-55555',
  gitUrl: 'ghs_KnownInstallationToken0123456789',
};

let f: DashboardFixture;
before(async () => {
  f = await dashboardFixture({
    executor: new LiveExecutor(),
    yaml: `dashboard:
  token: ${SECRETS.dash}
  users: { carol: ${SECRETS.carol} }
repos:
  app:
    git_url: https://x-access-token:${SECRETS.gitUrl}@127.0.0.1:1/acme/app.git
    masked_secrets:
      GH_TOKEN: { value: ${SECRETS.gh}, hosts: [api.github.com] }
    aws_credentials:
      PROD: { access_key_id: AKIAKNOWNKEYID000000, secret_access_key: ${SECRETS.aws}, hosts: ["*.amazonaws.com"] }
    agent:
      api_key: ${SECRETS.api}
    email:
      address: errand@example.com
      imap: { host: 127.0.0.1, port: 1, security: none, user: errand@example.com, password: ${SECRETS.imap} }
      smtp: { host: 127.0.0.1, port: 1, security: none, user: errand@example.com, password: ${SECRETS.smtp} }
      authorized_senders: [alice@example.com]
      trusted_authserv_id: mx.example.com
`,
  });
});
after(() => f?.close());

it('no page or API answer contains a configured secret, nor the token in a git_url', async () => {
  const api = { authorization: `Bearer ${f.controlToken}`, 'content-type': 'application/json' };
  await fetch(`${f.url}/api/repos/app/tasks`, {
    method: 'POST',
    headers: api,
    body: JSON.stringify({ text: 'show me the config' }),
  });
  const [conversation] = await eventually(async () => {
    const list = await f.store.listConversations({});
    return list.length ? list : undefined;
  }, 'the conversation');
  const [task] = await f.store.listTasks({ conversationId: conversation!.id });
  const paths = [
    '/',
    '/repos',
    `/conversations/${conversation!.id}`,
    `/tasks/${task!.id}`,
    '/api/health',
    '/api/tasks',
    '/api/conversations',
    `/api/conversations/${conversation!.id}`,
    `/api/conversations/${conversation!.id}/network`,
    `/api/tasks/${task!.id}`,
    `/api/tasks/${task!.id}/events`,
    '/login',
    '/assets/app.js',
  ];
  for (const path of paths) {
    const r = await fetch(`${f.url}${path}`, { headers: { authorization: api.authorization } });
    assert.equal(r.status, 200, path);
    const body = await r.text();
    for (const [name, value] of Object.entries(SECRETS)) {
      assert.ok(!body.includes(value), `${path} shows the ${name} secret`);
    }
  }
  // The repositories page says which credentials are set, without their values.
  const repos = await (
    await fetch(`${f.url}/repos`, { headers: { authorization: api.authorization } })
  ).text();
  assert.match(repos, /GH_TOKEN:\s+value: \(set\)/);
  assert.match(repos, /api_key: \(set\)/);
  assert.match(repos, /git_url: https:\/\/\*\*\*@127\.0\.0\.1:1\/acme\/app\.git/);
});
