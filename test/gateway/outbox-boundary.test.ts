import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join, sep } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EmailChannel } from '../../src/channels/email/index.ts';
import { createDashboard, type Dashboard } from '../../src/dashboard/index.ts';
import type { Delivery } from '../../src/domain/index.ts';
import { BASE_IMAGE } from '../../src/sandbox/index.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { configFrom } from '../harness/gateway-fixture.ts';
import { initRepo } from '../harness/git.ts';
import { mailFor, sendingEmailYaml } from '../harness/mail-out.ts';
import type { MemoryChannel } from '../harness/memory-channel.ts';
import { type SandboxGateway, startSandboxGateway } from '../harness/sandbox-gateway.ts';
import { ShellAgent } from '../harness/shell-agent.ts';
import { SmtpCatcher } from '../harness/smtp-catcher.ts';

// The outbox is the sandbox's: whatever the agent put there, errand takes only regular
// files, through descriptors that follow no link, into copies no sandbox can reach; the
// reply, the dashboard and the mail carry those copies.
const SECRET = 'HOST-ONLY-SECRET-9d41c0b7';

let dir: string;
let secretFile: string;
let sg: SandboxGateway;
let channel: MemoryChannel;
let dashboard: Dashboard;
let dashboardUrl: string;
let smtp: SmtpCatcher;
let email: EmailChannel;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'errand-outbox-'));
  secretFile = join(dir, 'host-secret.txt');
  writeFileSync(secretFile, SECRET);
  const origin = initRepo(join(dir, 'origin'), {
    'README.md': 'hello\n',
    '.errand/container/Containerfile': `FROM ${BASE_IMAGE}\n`,
  });
  smtp = await SmtpCatcher.start();
  const config = await configFrom(
    `execution:\n  shutdown_grace_seconds: 1\nrepos:\n  app:\n    git_url: ${origin}\n${sendingEmailYaml(smtp)}`,
    mkdtempSync(join(dir, 'cfg-')),
  );
  sg = await startSandboxGateway({ config, stateDir: join(dir, 'state'), agent: new ShellAgent() });
  channel = sg.channels.get('app')!;
  dashboard = createDashboard({
    gateway: sg.gateway,
    logger: silentLogger(),
    controlToken: 'control-token-for-tests',
    tokenHashes: new Map(),
    version: 'test',
    deliveriesDir: sg.executor.deliveriesDir,
  });
  await new Promise<void>((r) => dashboard.server.listen(0, '127.0.0.1', r));
  dashboardUrl = `http://127.0.0.1:${(dashboard.server.address() as AddressInfo).port}`;
  // The email channel, to send what a delivery names as a mail would.
  email = new EmailChannel('app', config.repos.app!.email!, {
    logger: silentLogger(),
    attachmentsDir: join(dir, 'attachments'),
  });
});
after(async () => {
  dashboard.close();
  dashboard.server.closeAllConnections();
  await new Promise<void>((r) => dashboard.server.close(() => r()));
  await email.stop();
  await sg.close();
  await smtp.close();
  rmSync(dir, { recursive: true, force: true });
});

async function ask(script: string, thread: string) {
  const n = channel.sent.length;
  await channel.send(script, { thread, id: `${thread}-${n}-${Date.now()}` });
  return (await channel.waitForSent(n + 1, 180_000))[n]!.delivery;
}

function dirsOf(d: Delivery) {
  return sg.executor.workspaces.dirs('app', d.conversationId!);
}

/** The reply's files as the dashboard serves them: status and body by name. */
async function served(d: Delivery, name: string): Promise<{ status: number; body: string }> {
  const r = await fetch(
    `${dashboardUrl}/conversations/${d.conversationId}/files/${d.id}/${encodeURIComponent(name)}`,
  );
  return { status: r.status, body: await r.text() };
}

function carries(raw: string, text: string): boolean {
  return raw.includes(text) || raw.includes(Buffer.from(text).toString('base64'));
}

describe('files from the outbox', () => {
  it('does not send a host file an outbox symlink points to', async () => {
    const d = await ask(
      `ln -s /proc/self/environ /outbox/env.txt; ln -s ${secretFile} /outbox/secret.txt; echo fine > /outbox/ok.txt; echo done`,
      'links',
    );
    assert.equal(d.kind, 'reply', d.text);
    assert.deepEqual(
      d.files.map((f) => basename(f)),
      ['ok.txt'],
    );
    assert.match(d.text, /env\.txt was not attached: it is a symbolic link/);
    assert.match(d.text, /secret\.txt was not attached: it is a symbolic link/);
    for (const f of d.files) {
      const content = readFileSync(f, 'utf8');
      assert.ok(!content.includes(SECRET) && !content.includes('PATH='), f);
    }
    for (const name of ['env.txt', 'secret.txt']) {
      const r = await served(d, name);
      assert.equal(r.status, 404, `${name} is not served`);
      assert.ok(!r.body.includes(SECRET) && !r.body.includes('PATH='));
    }
    assert.deepEqual(await served(d, 'ok.txt'), { status: 200, body: 'fine\n' });
    const raw = await mailFor(email, smtp, d);
    assert.ok(!carries(raw, SECRET), 'the mail carries no host file');
    assert.ok(!carries(raw, 'PATH='), "the mail carries no part of errand's environment");
    assert.ok(carries(raw, 'fine\n'), 'the regular file is attached');
  });

  it('names a FIFO, a folder and a file over the size limit, without waiting on the FIFO, and sends the regular file', async () => {
    const d = await ask(
      'mkfifo /outbox/pipe; mkdir -p /outbox/sub/deeper; echo inner > /outbox/sub/deeper/x; head -c 26214401 /dev/zero > /outbox/big.bin; echo fine > /outbox/fine.txt; echo done',
      'kinds',
    );
    assert.equal(d.kind, 'reply', d.text);
    assert.deepEqual(
      d.files.map((f) => basename(f)),
      ['fine.txt'],
    );
    assert.match(d.text, /pipe was not attached: not a regular file/);
    assert.match(d.text, /sub was not attached: it is a folder/);
    assert.match(d.text, /big\.bin was not attached: over the 25 MB limit for one file/);
    const { outbox } = dirsOf(d);
    // The copy lives in errand's deliveries folder, not in anything a sandbox mounts.
    assert.ok(d.files[0]!.startsWith(`${sg.executor.deliveriesDir}${sep}`), d.files[0]);
    assert.equal(readFileSync(d.files[0]!, 'utf8'), 'fine\n');
    assert.deepEqual(readdirSync(outbox), [], 'the outbox is empty after the task');
  });

  it('turns an outbox of 3,200 files into at most 100 attachments and one line for the rest, and empties it', async () => {
    // Each file taken is an attachment (a Slack upload, a mail part), each one skipped a
    // line of the reply. 200 of the names differ only in control characters, which the
    // sanitized names drop: they must still come out unique.
    const d = await ask(
      'cd /outbox && for i in $(seq 3000); do : > "f$i"; done; c=""; for i in $(seq 200); do c="$c$(printf "\\001")"; : > "a$c"; done; echo done',
      'many',
    );
    assert.equal(d.kind, 'reply', d.text.slice(0, 400));
    assert.equal(d.files.length, 100);
    const names = d.files.map((f) => basename(f));
    assert.equal(new Set(names.map((n) => n.toLowerCase())).size, names.length);
    assert.match(
      d.text,
      /The other entries of the outbox were not attached: only 100 are looked at for one reply/,
    );
    assert.ok(d.text.split('\n').length <= 3, d.text.slice(0, 400));
    assert.deepEqual(readdirSync(dirsOf(d).outbox), [], 'the outbox is empty after the task');
  });

  it("does not attach the earlier task's files to a later reply", async () => {
    const first = await ask('echo one > /outbox/first.txt; echo done', 'twice');
    assert.deepEqual(
      first.files.map((f) => basename(f)),
      ['first.txt'],
    );
    const second = await ask('echo two > /outbox/second.txt; echo done', 'twice');
    assert.deepEqual(
      second.files.map((f) => basename(f)),
      ['second.txt'],
    );
    assert.equal(readFileSync(first.files[0]!, 'utf8'), 'one\n', 'the first copy is kept');
  });

  it('serves the copy, not what a link put at the outbox name after the task points to', async () => {
    const d = await ask('echo "the report" > /outbox/report.txt; echo done', 'swap');
    assert.deepEqual(
      d.files.map((f) => basename(f)),
      ['report.txt'],
    );
    // Whatever lands at the name afterwards (a later task, a process left running).
    rmSync(join(dirsOf(d).outbox, 'report.txt'), { force: true });
    symlinkSync(secretFile, join(dirsOf(d).outbox, 'report.txt'));
    assert.deepEqual(await served(d, 'report.txt'), { status: 200, body: 'the report\n' });
    const raw = await mailFor(email, smtp, d);
    assert.ok(!carries(raw, SECRET));
    assert.ok(carries(raw, 'the report\n'));
    rmSync(join(dirsOf(d).outbox, 'report.txt'));
  });

  it('serves no delivery file outside the deliveries folder, nor a link inside it', async () => {
    const d = await ask('echo done', 'stored');
    const copies = join(sg.executor.deliveriesDir, d.conversationId!);
    mkdirSync(copies, { recursive: true });
    const inside = join(copies, 'planted.txt');
    symlinkSync(secretFile, inside);
    // A link whose target is inside the folder too: refused for being a link.
    writeFileSync(join(copies, 'real.txt'), SECRET);
    symlinkSync(join(copies, 'real.txt'), join(copies, 'alias.txt'));
    const planted = await sg.store.createDelivery({
      repoId: 'app',
      channel: 'web',
      conversationId: d.conversationId,
      kind: 'reply',
      text: 'planted',
      files: ['/etc/passwd', secretFile, inside, join(copies, 'alias.txt')],
    });
    for (const name of ['passwd', 'host-secret.txt', 'planted.txt', 'alias.txt']) {
      const r = await served(planted, name);
      assert.equal(r.status, 404, name);
      assert.ok(!r.body.includes(SECRET) && !r.body.includes('root:'), name);
    }
  });

  it('removes the conversation’s reply copies with the conversation', async () => {
    const d = await ask('echo kept > /outbox/kept.txt; echo done', 'removed');
    const copies = join(sg.executor.deliveriesDir, d.conversationId!);
    assert.ok(existsSync(d.files[0]!));
    const conversation = (await sg.store.getConversation(d.conversationId!))!;
    await sg.executor.removeConversation(conversation);
    assert.equal(existsSync(copies), false);
  });

  it('removes links the agent left in its folders without following them, when the conversation goes', async () => {
    const hostDir = join(dir, 'host-folder');
    mkdirSync(hostDir);
    writeFileSync(join(hostDir, 'keep.txt'), 'untouched\n');
    const d = await ask(
      `ln -s ${hostDir} /workspace/up; ln -s ${hostDir} /storage/up; ln -s ${join(hostDir, 'keep.txt')} /errand/agent/keep; mkdir -p /storage/deep && ln -s ${hostDir} /storage/deep/up; echo done`,
      'links-left',
    );
    assert.equal(d.text, 'done\n');
    const conversation = (await sg.store.getConversation(d.conversationId!))!;
    await sg.executor.removeConversation(conversation);
    assert.equal(existsSync(dirsOf(d).root), false, 'the conversation is gone');
    assert.deepEqual(readdirSync(hostDir), ['keep.txt']);
    assert.equal(readFileSync(join(hostDir, 'keep.txt'), 'utf8'), 'untouched\n');
  });
});

describe('attachments into the inbox', () => {
  it('does not follow a link planted at the attachment name in the inbox', async () => {
    const first = await ask('echo ready', 'inbox');
    const victim = join(dir, 'victim.txt');
    writeFileSync(victim, 'untouched\n');
    // Planted on the host side: what a link in the inbox would do, however it got there.
    symlinkSync(victim, join(dirsOf(first).inbox, 'notes.txt'));
    const saved = join(dir, 'saved-notes.txt');
    writeFileSync(saved, 'the notes\n');
    const n = channel.sent.length;
    await channel.send('cat /inbox/notes.txt', {
      thread: 'inbox',
      id: `inbox-${Date.now()}`,
      attachments: [{ name: 'notes.txt', path: saved, size: 10 }],
    });
    const d = (await channel.waitForSent(n + 1, 180_000))[n]!.delivery;
    assert.equal(d.text, 'the notes\n');
    assert.equal(readFileSync(victim, 'utf8'), 'untouched\n', 'the link target is untouched');
  });
});
