import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { createLogger } from '../../src/util/logger.ts';

it('writes no credential of a URL quoted in any field, message or error of a log line (a library logging the URL it was given)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'errand-log-'));
  try {
    const file = join(dir, 'log.jsonl');
    const log = createLogger({ destination: file, level: 'debug' });
    log.error(
      { slack: 'Failed to connect to wss://wss.example.com/link/?ticket=TicketSecret1&app_id=A1' },
      'slack client',
    );
    log.warn(
      { err: new Error("fatal: unable to access 'https://u:PassSecret2@git.example.com/x/'") },
      'fetch failed',
    );
    log.info(
      { nested: { url: 'imaps://errand:PassSecret3@mail.example.com' } },
      'connecting to smtp://u:PassSecret4@mail.example.com',
    );
    log.debug({ presigned: 'https://b.s3.amazonaws.com/k?X-Amz-Signature=SigSecret5' }, 'upload');
    log.flush();
    const text = readFileSync(file, 'utf8');
    for (const secret of [
      'TicketSecret1',
      'PassSecret2',
      'PassSecret3',
      'PassSecret4',
      'SigSecret5',
    ])
      assert.ok(!text.includes(secret), `the log shows ${secret}`);
    // Every line is still JSON, and says where it went.
    const lines = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, 4);
    assert.equal(
      (lines[1]!.err as { message: string }).message,
      "fatal: unable to access 'https://***@git.example.com/x/'",
    );
    assert.equal(lines[2]!.msg, 'connecting to smtp://***@mail.example.com');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
