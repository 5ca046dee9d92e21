/**
 * One errand on real components for end-to-end tests and benchmarks: a local forge (git
 * http-backend and a pull-request API over HTTPS), the scripted model server, Dovecot,
 * an SMTP server and the Slack emulator as its peers; the real gateway with the web, email
 * and Slack channels, the podman sandbox, the proxy and the Claude Code CLI; and the
 * dashboard's API. The repository has three buggy functions with a test each.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClaudeCodeRunner } from '../../src/agent/index.ts';
import { EmailChannel } from '../../src/channels/email/index.ts';
import { SlackChannel } from '../../src/channels/slack/index.ts';
import { WebChannel } from '../../src/channels/web/index.ts';
import { defaultCacheDir } from '../../src/config/index.ts';
import { createDashboard } from '../../src/dashboard/index.ts';
import { SandboxExecutor } from '../../src/execution/index.ts';
import { Gateway } from '../../src/gateway/index.ts';
import { BASE_IMAGE } from '../../src/sandbox/index.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import type { Store } from '../../src/store/types.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { DovecotServer } from './dovecot-server.ts';
import { type Forge, startForge } from './forge.ts';
import { configFrom } from './gateway-fixture.ts';
import { initRepo } from './git.ts';
import { type ModelRequest, startModelServer } from './model-server.ts';
import { fakeDns, type SigningDomain, signingDomain } from './signed-mail.ts';
import { APP_TOKEN, BOT_TOKEN, SlackEmulator } from './slack-emulator.ts';
import { SmtpCatcher } from './smtp-catcher.ts';

export const API_HOST = 'api.model.test';
export const FORGE = 'forge.test';
export const MODEL_KEY = 'sk-ant-api03-EndToEndModelKey0123456789abcdefghijkl';
export const FORGE_TOKEN = 'ghp_EndToEndForgeToken0123456789abcdefABCD';
const PUSH = `git push -q "https://agent:$FORGE_TOKEN@${FORGE}/acme/app.git"`;
const AS_AGENT = '-c user.name=errand-agent -c user.email=agent@errand.test';

/** Per function: the bug as a sed pattern, and the fix. */
const BUGS: Record<string, [string, string]> = {
  add: ['a - b', 'a + b'],
  sub: ['a [*] b', 'a - b'],
  mul: ['a + b', 'a * b'],
};

/** The model's side: fix the named function, test, commit, push, open the pull request. */
function scenario(req: ModelRequest) {
  const t = req.lastUserText;
  const fn = /fix the (add|sub|mul) function/.exec(t)?.[1];
  if (fn) {
    if (req.afterToolResult) {
      const url = /"html_url":"([^"]+)"/.exec(req.toolResultText)?.[1];
      return [
        {
          type: 'text' as const,
          text: url
            ? `Fixed \`${fn}\`: its test passes now. Pull request: ${url} (branch errand/fix-${fn}).`
            : `Could not open the pull request:\n${req.toolResultText.slice(-800)}`,
        },
      ];
    }
    const [bad, good] = BUGS[fn]!;
    const command = [
      'cd /workspace',
      `sed -i 's/${fn} = (a, b) => ${bad}/${fn} = (a, b) => ${good}/' math.js`,
      `node --test test/${fn}.test.js > /tmp/test.log 2>&1 || { cat /tmp/test.log; exit 1; }`,
      `git checkout -q -b errand/fix-${fn}`,
      `git ${AS_AGENT} commit -qam "Fix ${fn}"`,
      `${PUSH} errand/fix-${fn} 2>&1`,
      `curl -sS -X POST -H "Authorization: Bearer $FORGE_TOKEN" -H 'content-type: application/json' -d '{"title":"Fix ${fn}","head":"errand/fix-${fn}","base":"main"}' https://${FORGE}/api/repos/acme/app/pulls`,
    ].join(' && ');
    return [
      { type: 'tool_use' as const, name: 'Bash', input: { command, description: `fix ${fn}` } },
    ];
  }
  if (t.includes('run the tests')) {
    return req.afterToolResult
      ? [{ type: 'text' as const, text: 'The tests ran.' }]
      : [
          {
            type: 'tool_use' as const,
            name: 'Bash',
            input: {
              command: 'cd /workspace && node --test test/ > /dev/null 2>&1; echo done',
              description: 'test',
            },
          },
        ];
  }
  if (t.includes('also update the changelog')) {
    if (req.afterToolResult) {
      return [
        {
          type: 'text' as const,
          text: `Pushed a second commit to the same branch:\n${req.toolResultText.trim()}`,
        },
      ];
    }
    const command = [
      'cd /workspace',
      'echo "- Fixed add" >> CHANGELOG.md',
      `git ${AS_AGENT} commit -qam "Update the changelog"`,
      `${PUSH} HEAD 2>&1`,
      'git log --format=%s -2',
    ].join(' && ');
    return [
      { type: 'tool_use' as const, name: 'Bash', input: { command, description: 'changelog' } },
    ];
  }
  return [{ type: 'text' as const, text: 'I do not understand.' }];
}

export interface EndToEnd {
  dir: string;
  /** The forge's bare repository (also errand's git_url). */
  bare: string;
  model: Awaited<ReturnType<typeof startModelServer>>;
  forge: Forge;
  imap: DovecotServer;
  smtp: SmtpCatcher;
  slack: SlackEmulator;
  store: Store;
  gateway: Gateway;
  dashboardUrl: string;
  controlToken: string;
  /** The mail domain of the authorized sender, with its DKIM key. */
  sender: SigningDomain;
  /** Commit subjects of a branch in the forge's repository, newest first. */
  branchLog(branch: string): string[];
  close(): Promise<void>;
}

export async function startEndToEnd(o: { maxConcurrent?: number } = {}): Promise<EndToEnd> {
  const sender = signingDomain('sender.test');
  const controlToken = 'e2e-control-token';

  const dir = mkdtempSync(join(tmpdir(), 'errand-e2e-'));
  const caDir = join(dir, 'ca');
  const model = await startModelServer(caDir, API_HOST, scenario);
  writeFileSync(join(dir, 'upstream-ca.pem'), model.caPem);
  const work = initRepo(join(dir, 'work'), {
    'math.js':
      'exports.add = (a, b) => a - b;\nexports.sub = (a, b) => a * b;\nexports.mul = (a, b) => a + b;\n',
    'test/add.test.js':
      "const test = require('node:test');\nconst assert = require('node:assert');\nconst { add } = require('../math.js');\ntest('add', () => assert.equal(add(2, 3), 5));\n",
    'test/sub.test.js':
      "const test = require('node:test');\nconst assert = require('node:assert');\nconst { sub } = require('../math.js');\ntest('sub', () => assert.equal(sub(5, 3), 2));\n",
    'test/mul.test.js':
      "const test = require('node:test');\nconst assert = require('node:assert');\nconst { mul } = require('../math.js');\ntest('mul', () => assert.equal(mul(2, 3), 6));\n",
    'CHANGELOG.md': '# Changelog\n',
    'CLAUDE.md': 'Run the tests with node --test. Open a pull request for every change.\n',
    '.errand/container/Containerfile': `FROM ${BASE_IMAGE}\n`,
    '.errand/network-allowlist.yaml': `allow:\n  - host: ${FORGE}\n    paths: ["/acme/app.git/*"]\n  - host: ${FORGE}\n    paths: ["/api/repos/acme/app/pulls"]\n    methods: [POST]\n`,
  });
  mkdirSync(join(dir, 'forge', 'acme'), { recursive: true });
  const bare = join(dir, 'forge', 'acme', 'app.git');
  execFileSync('git', ['clone', '-q', '--bare', work, bare]);
  execFileSync('git', ['-C', bare, 'config', 'http.receivepack', 'true']);
  const forge = await startForge({
    root: join(dir, 'forge'),
    name: FORGE,
    token: FORGE_TOKEN,
    caDir,
  });
  const [imap, smtp, slack] = await Promise.all([
    DovecotServer.start(),
    SmtpCatcher.start(),
    SlackEmulator.start(),
  ]);
  slack.addUser({ id: 'U1ALICE', name: 'alice' });
  const config = await configFrom(
    `execution:
  shutdown_grace_seconds: 1
  max_concurrent: ${o.maxConcurrent ?? 4}
repos:
  app:
    git_url: ${bare}
    usage_footer: true
    agent:
      api_key: ${MODEL_KEY}
      api_host: ${API_HOST}
    masked_secrets:
      FORGE_TOKEN: { value: ${FORGE_TOKEN}, hosts: [${FORGE}], headers: [Authorization] }
    network:
      resolve: { ${API_HOST}: "127.0.0.1:${model.port}", ${FORGE}: "127.0.0.1:${forge.port}" }
      upstream_ca: ${join(dir, 'upstream-ca.pem')}
    email:
      address: errand@example.com
      imap: { host: 127.0.0.1, port: ${imap.port}, security: none, user: errand@example.com, password: ${imap.users[0]!.password} }
      smtp: { host: 127.0.0.1, port: ${smtp.port}, security: none, user: ${smtp.user}, password: ${smtp.password} }
      authorized_senders: [alice@sender.test]
      verify_dkim: true
    slack:
      app_token: ${APP_TOKEN}
      bot_token: ${BOT_TOKEN}
      authorized: { workspace_members: true }
`,
    mkdtempSync(join(dir, 'cfg-')),
  );
  const state = join(dir, 'state');
  const executor = await SandboxExecutor.onHost({
    stateDir: state,
    sandboxDir: join(dir, 'sandboxes'),
    cacheDir: defaultCacheDir(),
    imageMaxAgeMs: 3_600_000,
    config: () => config,
    agent: new ClaudeCodeRunner(),
    logger: silentLogger(),
  });
  const store = openSqliteStore(join(state, 'errand.db'));
  const gateway = new Gateway({
    store,
    config,
    logger: silentLogger(),
    executor,
    channelFactory: (repoId, repo) => [
      new WebChannel(repoId, repo.web),
      new EmailChannel(repoId, repo.email!, {
        logger: silentLogger(),
        attachmentsDir: join(state, 'attachments'),
        resolver: fakeDns(sender),
      }),
      new SlackChannel(repoId, repo.slack!, {
        logger: silentLogger(),
        attachmentsDir: join(state, 'attachments'),
        apiUrl: slack.apiUrl,
      }),
    ],
  });
  await gateway.start();
  const dashboard = createDashboard({
    gateway,
    logger: silentLogger(),
    controlToken,
    tokenHashes: new Map(),
    version: 'e2e',
    deliveriesDir: executor.deliveriesDir,
  });
  await new Promise<void>((r) => dashboard.server.listen(0, '127.0.0.1', r));
  const dashboardUrl = `http://127.0.0.1:${(dashboard.server.address() as AddressInfo).port}`;
  await slack.waitForConnection();
  return {
    dir,
    bare,
    model,
    forge,
    imap,
    smtp,
    slack,
    store,
    gateway,
    dashboardUrl,
    controlToken,
    sender,
    branchLog: (branch) =>
      execFileSync('git', ['-C', bare, 'log', '--format=%s', branch], { encoding: 'utf8' })
        .trim()
        .split('\n'),
    async close() {
      dashboard.close();
      dashboard.server.closeAllConnections();
      await new Promise((r) => dashboard.server.close(r));
      await gateway.shutdown();
      await store.close();
      await Promise.all([model.close(), forge.close(), imap.close(), smtp.close(), slack.close()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
