/**
 * A real gateway (real executor, podman, the agent a shell script in the sandbox) run in
 * steps by test/sandbox/rootless.test.ts as the unprivileged user, on state kept in
 * `work` between steps, so the test can change the folders as root in between:
 *
 *   node retention-child.ts run WORK THREAD...   one task per thread that locks its folders
 *   node retention-child.ts sweep WORK           a retention sweep as 31 days later
 *   node retention-child.ts delete WORK ID       deletes one conversation now
 *
 * The last line of stdout is JSON.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { configFrom } from './gateway-fixture.ts';
import { initRepo } from './git.ts';
import { lockFoldersScript } from './locked-folders-agent.ts';
import { startSandboxGateway } from './sandbox-gateway.ts';
import { ShellAgent } from './shell-agent.ts';

const [step, work, ...args] = process.argv.slice(2);
if (!work) throw new Error('usage: retention-child.ts run|sweep|delete WORK ...');
const host = join(work, 'host-folder');
const origin = join(work, 'origin');
if (!existsSync(origin)) {
  initRepo(origin, { 'README.md': 'hi\n' });
  mkdirSync(host);
  writeFileSync(join(host, 'keep.txt'), 'the host file');
}
const config = await configFrom(`repos:\n  app:\n    git_url: ${origin}\n`, work);
const sg = await startSandboxGateway({
  config,
  stateDir: join(work, 'state'),
  agent: new ShellAgent(),
  cacheDir: process.env.ERRAND_TEST_CLI_CACHE,
});
const rootOf = (id: string) => sg.executor.workspaces.dirs('app', id).root;
let out: unknown;
try {
  if (step === 'run') {
    const ch = sg.channels.get('app')!;
    const conversations = [];
    for (const thread of args) {
      await ch.send(lockFoldersScript(host), { thread, id: thread });
      const sent = await ch.waitForSent(conversations.length + 1, 240_000);
      const d = sent.at(-1)!.delivery;
      conversations.push({
        thread,
        id: d.conversationId!,
        root: rootOf(d.conversationId!),
        text: d.text,
      });
    }
    out = { conversations };
  } else if (step === 'sweep') {
    const now = Date.now;
    Date.now = () => now() + 31 * 86_400_000;
    let removed: number;
    try {
      removed = await sg.gateway.sweepRetention();
    } finally {
      Date.now = now;
    }
    out = { removed, undeleted: sg.gateway.undeletedConversations() };
  } else if (step === 'delete') {
    out = { result: await sg.gateway.deleteConversation(args[0]!) };
  }
  const left = (await sg.store.listConversations({ limit: 100 })).map((c) => c.id);
  // A removal that followed a link would have taken the host folder too.
  out = { ...(out as object), left, host: existsSync(host) ? readdirSync(host) : 'gone' };
} finally {
  await sg.close();
}
console.log(JSON.stringify(out));
