import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { openSqliteStore } from '../../src/store/index.ts';
import { msg, storeContract } from './store-contract.ts';

const dir = mkdtempSync(join(tmpdir(), 'errand-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

storeContract('SQLite in memory', () => openSqliteStore(':memory:'));
storeContract('SQLite file', () => openSqliteStore(join(dir, `contract-${files++}.db`)));

describe('the SQLite store', () => {
  it('keeps data across close and reopen, and creates its file private', async () => {
    const path = join(dir, 'state', 'reopen.db');
    const a = openSqliteStore(path);
    const { message } = await a.insertMessage(msg());
    await a.close();
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'state')).mode & 0o777, 0o700);
    const b = openSqliteStore(path);
    assert.equal((await b.getMessage(message.id))!.text, message.text);
    await b.close();
  });

  it('continues task numbering after a reopen', async () => {
    const path = join(dir, 'seq.db');
    const a = openSqliteStore(path);
    const c = await a.createConversation({
      repoId: 'app',
      channel: 'web',
      threadKey: 'k',
      title: 't',
    });
    const t1 = await a.queueMessage((await a.insertMessage(msg())).message.id, c.id);
    await a.updateTask(t1.task.id, { state: 'running' });
    await a.close();
    const b = openSqliteStore(path);
    const t2 = await b.queueMessage((await b.insertMessage(msg())).message.id, c.id);
    assert.ok(t2.task.seq > t1.task.seq);
    await b.close();
  });

  it('refuses a store written by a newer errand, saying to upgrade', () => {
    const path = join(dir, 'future.db');
    const db = new DatabaseSync(path);
    db.exec('PRAGMA user_version = 999');
    db.close();
    assert.throws(
      () => openSqliteStore(path),
      (e: Error & { code?: string }) =>
        e.code === 'store_failed' && /newer errand.*Upgrade errand/.test(e.message),
    );
  });

  it('keeps a message whose insert returned, even when the process is killed right after', async () => {
    const path = join(dir, 'killed.db');
    const storeUrl = new URL('../../src/store/index.ts', import.meta.url).href;
    const script = `
      const { openSqliteStore } = await import(${JSON.stringify(storeUrl)});
      const s = openSqliteStore(${JSON.stringify(path)});
      const { message } = await s.insertMessage({ repoId: 'app', channel: 'email', externalId: 'x1', threadKeys: [], ownThreadKey: 'x1',
        sender: { id: 'a@b' }, text: 'survive', attachments: [], receivedAt: 1 });
      process.stdout.write('stored ' + message.id + '\\n');
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const id = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => {
        const m = /stored (\S+)/.exec(c.toString());
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const s = openSqliteStore(path);
    assert.equal((await s.getMessage(id))!.text, 'survive');
    await s.close();
  });
});
