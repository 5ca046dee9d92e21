import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BASE_IMAGE } from '../../src/sandbox/index.ts';
import { configFrom } from '../harness/gateway-fixture.ts';
import { initRepo } from '../harness/git.ts';
import { type SandboxGateway, startSandboxGateway } from '../harness/sandbox-gateway.ts';
import { ShellAgent } from '../harness/shell-agent.ts';
import { type Seen, startUpstream } from '../harness/upstream.ts';

// A tricked agent calling the model API itself, from a real container, with tools the
// provider would run on its own servers (outside errand's proxy). The API host is a
// loopback upstream that records what reached it.
const API_HOST = 'api.model.test';
const REAL_KEY = 'sk-ant-api03-RealKeyForTheRecordingUpstream0123456789abcdef';
const ALLOWLIST = 'allow:\n  - host: docs.test.example\n  - host: "*.docs.test.example"\n';

let dir: string;
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let sandboxGateway: SandboxGateway;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'errand-server-tools-'));
  upstream = await startUpstream(join(dir, 'up'), [API_HOST]);
  writeFileSync(join(dir, 'up.pem'), upstream.caPem);
  const origin = initRepo(join(dir, 'origin'), {
    '.errand/container/Containerfile': `FROM ${BASE_IMAGE}\n`,
    '.errand/network-allowlist.yaml': ALLOWLIST,
  });
  const repo = (id: string, extra: string) =>
    `  ${id}:\n    git_url: ${origin}\n    agent:\n      api_key: ${REAL_KEY}\n      api_host: ${API_HOST}\n${extra}    network:\n      resolve: { ${API_HOST}: "127.0.0.1:${upstream.httpsPort}" }\n      upstream_ca: ${join(dir, 'up.pem')}\n`;
  const config = await configFrom(
    `execution:\n  shutdown_grace_seconds: 1\nrepos:\n${repo('app', '')}${repo('web', '      server_tools: [web_search]\n')}`,
    mkdtempSync(join(dir, 'cfg-')),
  );
  sandboxGateway = await startSandboxGateway({
    config,
    stateDir: join(dir, 'state'),
    agent: new ShellAgent(),
  });
});
after(async () => {
  await sandboxGateway?.close();
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A script that posts `body` to the model API with the agent's own (surrogate) key. */
function callApi(body: string, o: { gzip?: boolean } = {}) {
  const curl = `curl -sS -X POST https://${API_HOST}/v1/messages -H "x-api-key: $ANTHROPIC_API_KEY" -H "content-type: application/json" --data-binary @-`;
  const send = o.gzip
    ? `gzip -c | ${curl} -H "content-encoding: gzip" -o /dev/null -D - | grep -i '^x-errand-block'`
    : `${curl} -o /dev/null -w "%{http_code}\\n"`;
  return `cat <<'JSON' | ${send}\n${body}\nJSON\n`;
}

const MESSAGE =
  '"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]';
const WEB_FETCH = '{"type":"web_fetch_20250910","name":"web_fetch"}';
const BASH = '{"name":"Bash","input_schema":{"type":"object"}}';

/** Runs the script as a task of `repo` and returns its output and what reached the API. */
async function task(repo: string, script: string, thread: string) {
  const ch = sandboxGateway.channels.get(repo)!;
  const from = upstream.seen.length;
  const n = ch.sent.length;
  await ch.send(script, { thread, id: `${thread}-${Date.now()}` });
  const d = (await ch.waitForSent(n + 1, 120_000))[n]!.delivery;
  assert.equal(d.kind, 'reply', d.text);
  return {
    text: d.text,
    seen: upstream.seen.slice(from) as Seen[],
    conversationId: d.conversationId!,
  };
}

describe("the model API's server-side tools, from inside the sandbox", () => {
  it('strips a web_fetch tool the agent adds to its own API request', async () => {
    const r = await task('app', callApi(`{${MESSAGE},"tools":[${WEB_FETCH},${BASH}]}`), 'fetch');
    assert.equal(r.text, '200\n');
    assert.equal(r.seen.length, 1);
    const body = JSON.parse(r.seen[0]!.body);
    assert.deepEqual(body.tools, [JSON.parse(BASH)], 'the client tool stays, web_fetch is gone');
    assert.equal(
      r.seen[0]!.headers['x-api-key'],
      REAL_KEY,
      'the request was otherwise the agent’s',
    );
    const logged = await sandboxGateway.executor.networkLog(
      (await sandboxGateway.store.getConversation(r.conversationId))!,
      10,
    );
    assert.deepEqual(logged.at(-1)?.removed, ['web_fetch_20250910']);
  });

  it('strips mcp_servers, which would have the provider connect to any server', async () => {
    const mcp = '"mcp_servers":[{"type":"url","url":"https://attacker.example/mcp","name":"x"}]';
    const r = await task('app', callApi(`{${MESSAGE},${mcp}}`), 'mcp');
    assert.equal(r.text, '200\n');
    assert.equal(r.seen.length, 1);
    assert.equal('mcp_servers' in JSON.parse(r.seen[0]!.body), false);
    assert.doesNotMatch(r.seen[0]!.body, /attacker/);
  });

  it('refuses a gzip-encoded request body, and nothing reaches the API', async () => {
    const r = await task(
      'app',
      callApi(`{${MESSAGE},"tools":[${WEB_FETCH}]}`, { gzip: true }),
      'gzip',
    );
    assert.match(r.text, /x-errand-block: model_request_encoded/i);
    assert.deepEqual(r.seen, [], 'nothing reached the API');
  });

  it('sends on what errand checked when the body repeats the tools key', async () => {
    const r = await task('app', callApi(`{${MESSAGE},"tools":[],"tools":[${WEB_FETCH}]}`), 'dup');
    assert.equal(r.text, '200\n');
    const received = r.seen[0]!.body;
    assert.equal(received.match(/"tools"/g)?.length, 1, received);
    assert.doesNotMatch(received, /web_fetch/);
  });

  it('forwards an enabled web_search with allowed_domains from the allowlist, not the agent’s', async () => {
    const search =
      '{"type":"web_search_20250305","name":"web_search","allowed_domains":["attacker.example"],"max_uses":2}';
    const r = await task('web', callApi(`{${MESSAGE},"tools":[${search},${WEB_FETCH}]}`), 'search');
    assert.equal(r.text, '200\n');
    assert.deepEqual(JSON.parse(r.seen[0]!.body).tools, [
      {
        type: 'web_search_20250305',
        name: 'web_search',
        allowed_domains: ['docs.test.example'],
        max_uses: 2,
      },
    ]);
  });
});
