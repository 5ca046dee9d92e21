import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EmailChannel } from '../../src/channels/email/index.ts';
import { SlackChannel } from '../../src/channels/slack/index.ts';
import type { Conversation, Delivery } from '../../src/domain/index.ts';
import { silentLogger } from '../../src/util/logger.ts';
import { configFrom } from '../harness/gateway-fixture.ts';
import { mailFor, sendingEmailYaml } from '../harness/mail-out.ts';
import { APP_TOKEN, BOT_TOKEN, SlackEmulator } from '../harness/slack-emulator.ts';
import { SmtpCatcher } from '../harness/smtp-catcher.ts';

// A reply's files are paths in the store. A channel opens each without following a link
// at its name: a path that has become a link (to errand's environment, to a host file)
// is named in the reply as not attached and never read.
const SECRET = 'HOST-ONLY-SECRET-5f2c9a7e';

let dir: string;
let smtp: SmtpCatcher;
let slack: SlackEmulator;
let report: string;
let linked: string;
let pipe: string;

function delivery(files: string[]): Delivery {
  return {
    id: `d_${Math.random().toString(36).slice(2, 10)}`,
    repoId: 'app',
    channel: 'email',
    kind: 'reply',
    text: 'Here you are.',
    files,
    state: 'pending',
    attempts: 0,
    createdAt: Date.now(),
  };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'errand-reply-files-'));
  smtp = await SmtpCatcher.start();
  slack = await SlackEmulator.start();
  writeFileSync(join(dir, 'secret.txt'), SECRET);
  const copies = join(dir, 'deliveries', 'c_1', 't_1');
  mkdirSync(copies, { recursive: true });
  report = join(copies, 'report.txt');
  writeFileSync(report, 'the report\n');
  linked = join(copies, 'env.txt');
  symlinkSync(join(dir, 'secret.txt'), linked);
  pipe = join(copies, 'pipe');
  // A FIFO: opened non-blocking, refused without waiting for a writer.
  const { execFileSync } = await import('node:child_process');
  execFileSync('mkfifo', [pipe]);
});
after(async () => {
  await slack.close();
  await smtp.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('reply files in the channels', () => {
  it('does not mail a file whose path in the store is a link, and names it in the mail', async () => {
    const config = await configFrom(
      `repos:\n  app:\n    git_url: /srv/app.git\n${sendingEmailYaml(smtp)}`,
      mkdtempSync(join(dir, 'cfg-')),
    );
    const channel = new EmailChannel('app', config.repos.app!.email!, {
      logger: silentLogger(),
      attachmentsDir: join(dir, 'attachments'),
    });
    try {
      const raw = await mailFor(channel, smtp, delivery([linked, pipe, report]));
      assert.ok(
        !raw.includes(Buffer.from(SECRET).toString('base64')),
        'the secret is not attached',
      );
      assert.ok(!raw.includes(SECRET), 'the secret is not in the mail');
      assert.ok(raw.includes(Buffer.from('the report\n').toString('base64')), 'the copy is');
      assert.match(
        raw.replace(/=\r\n/g, ''),
        /Not attached: env\.txt, not a regular file; pipe, not a regular file/,
      );
    } finally {
      await channel.stop();
    }
  });

  it('does not upload to Slack a file whose path in the store is a link, and names it in the thread', async () => {
    const config = await configFrom(
      `repos:\n  app:\n    git_url: /srv/app.git\n    slack:\n      app_token: ${APP_TOKEN}\n      bot_token: ${BOT_TOKEN}\n      authorized:\n        workspace_members: true\n`,
      mkdtempSync(join(dir, 'cfg-')),
    );
    const channel = new SlackChannel('app', config.repos.app!.slack!, {
      logger: silentLogger(),
      attachmentsDir: join(dir, 'attachments'),
      apiUrl: slack.apiUrl,
    });
    const conversation = { threadKey: 'C0GENERAL:1.000100' } as Conversation;
    await channel.deliver(
      { ...delivery([linked, pipe, report]), channel: 'slack' },
      { conversation },
    );
    const uploaded = [...slack.files.values()];
    // The emulator keeps the upload's multipart body as it came.
    assert.deepEqual(
      uploaded.map((f) => f.name),
      ['report.txt'],
    );
    assert.ok(uploaded[0]!.content.includes('\r\nthe report\n\r\n'));
    const posted = slack.messages.map((m) => m.text).join('\n');
    assert.ok(!posted.includes(SECRET));
    assert.match(posted, /Not attached: env\.txt, not a regular file; pipe, not a regular file/);
  });
});
