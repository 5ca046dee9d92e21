/**
 * What `errand status` and `errand conversations` print of stored text (agent replies,
 * senders, subjects, channel errors) never drives the terminal it is printed on.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openSqliteStore } from '../../src/store/index.ts';
import { cli, freePort, tempHome } from '../harness/cli.ts';

/** Window title, screen clear, clipboard write (OSC 52), a hyperlink, C1 CSI, DEL, a lone CR. */
const CONTROLS =
  'a\x1b]0;pwned\x07 b\x1b[2J c\x1b]52;c;cm0gLXJmIH4K\x07 d\x1b]8;;https://evil.example/\x07here\x1b]8;;\x07 e\x9b31m f\x7f g\roverwritten';
/** The same as printed: each control in caret notation. */
const SHOWN =
  'a^[]0;pwned^G b^[[2J c^[]52;c;cm0gLXJmIH4K^G d^[]8;;https://evil.example/^Ghere^[]8;;^G eM-^[31m f^? g^Moverwritten';
/** A newline in a one-line field, trying to print a line of its own. */
const FORGED = '\n2026-01-01T00:00:00.000Z < errand reply [sent]';
/** Any control character a terminal acts on; newline and tab are not among them. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding controls is the point.
const ANY_CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

describe('stored text in the CLI', () => {
  const { home, env } = tempHome();
  const config = join(home, 'errand.yaml');
  let conversationId = '';
  let health: Server;

  before(async () => {
    const port = await freePort();
    const state = join(home, 'state');
    writeFileSync(config, `dashboard:\n  port: ${port}\nexecution:\n  state_dir: ${state}\n`);
    // A running errand's health answer, with a channel error a remote server wrote.
    health = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          status: 'ok',
          channels: [
            { repo: 'app', channel: 'email', state: 'error', lastError: CONTROLS, since: 0 },
          ],
        }),
      );
      req.resume();
    });
    await new Promise<void>((resolve) => health.listen(port, '127.0.0.1', () => resolve()));

    const store = openSqliteStore(join(state, 'errand.db'));
    const conversation = await store.createConversation({
      repoId: 'app',
      channel: 'email',
      threadKey: '<1@example.com>',
      title: `subject ${CONTROLS}${FORGED}`,
    });
    conversationId = conversation.id;
    const { message } = await store.insertMessage({
      repoId: 'app',
      channel: 'email',
      externalId: '<1@example.com>',
      threadKeys: ['<1@example.com>'],
      ownThreadKey: '<1@example.com>',
      sender: { id: 'mallory@example.com', name: `sender ${CONTROLS}${FORGED}` },
      text: `message ${CONTROLS}`,
      subject: `subject ${CONTROLS}`,
      attachments: [],
      receivedAt: Date.now() - 1000,
    });
    const { task } = await store.queueMessage(message.id, conversation.id);
    await store.updateConversation(conversation.id, { sessionId: `session ${CONTROLS}` });
    await store.finishTask(task.id, {
      state: 'failed',
      outcome: `outcome ${CONTROLS}`,
      messageState: 'answered',
      reason: `reason ${CONTROLS}`,
      delivery: {
        repoId: 'app',
        channel: 'email',
        conversationId: conversation.id,
        taskId: task.id,
        kind: 'reply',
        text: `reply line one\n\tindented ${CONTROLS}\nline three`,
      },
    });
    await store.close();
  });

  after(async () => {
    await new Promise<void>((resolve) => health?.close(() => resolve()));
    rmSync(home, { recursive: true, force: true });
  });

  it('conversations show prints no control sequence from a stored reply, sender or subject, only stand-ins', async () => {
    const r = await cli(['conversations', 'show', conversationId, '--config', config], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, ANY_CONTROL);
    for (const field of ['subject', 'sender', 'reason', 'session', 'outcome', 'message']) {
      assert.ok(r.stdout.includes(`${field} ${SHOWN}`), `${field} shown with stand-ins`);
    }
    assert.doesNotMatch(r.stdout, /^\S+ < errand reply \[sent\]$/m, 'no line a field forged');
    assert.ok(r.stdout.includes(`sender ${SHOWN} ${FORGED.slice(1)}`), 'a field stays on its line');
    assert.ok(
      r.stdout.includes(`    reply line one\n    \tindented ${SHOWN}\n    line three`),
      `newlines and tabs of the reply are kept:\n${r.stdout}`,
    );
  });

  it('conversations list prints a stored subject without control sequences, on its own row', async () => {
    const r = await cli(['conversations', 'list', '--config', config], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, ANY_CONTROL);
    const rows = r.stdout.trimEnd().split('\n');
    assert.equal(rows.length, 2, 'the header and one row');
    assert.ok(rows[1]!.endsWith(`subject ${SHOWN} ${FORGED.slice(1)}`), rows[1]);
  });

  it('the --json output escapes every control and still holds the stored text', async () => {
    for (const args of [
      ['conversations', 'list'],
      ['conversations', 'show', conversationId],
      ['status'],
    ]) {
      const r = await cli([...args, '--json', '--config', config], { env });
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout, ANY_CONTROL, args.join(' '));
      assert.ok(r.stdout.includes('\\u009b31m'), `${args.join(' ')} escapes C1 controls`);
      assert.ok(
        JSON.stringify(JSON.parse(r.stdout)).includes(JSON.stringify(CONTROLS).slice(1, -1)),
      );
    }
  });

  it("status prints a channel's last error without control sequences", async () => {
    const r = await cli(['status', '--config', config], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, ANY_CONTROL);
    assert.match(r.stdout, /app\s+email\s+error/);
    assert.ok(r.stdout.includes(SHOWN), r.stdout);
  });
});
