import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fetchBatches, MAX_BATCH_MESSAGES } from '../../../src/channels/email/fetch-batches.ts';

const MB = 1024 * 1024;

describe('a backlog of unread mail', () => {
  it('is fetched in batches of at most 100 mails, each mail once and in order', () => {
    const uids = Array.from({ length: 10_000 }, (_, i) => i + 1);
    const sizes = new Map(uids.map((u) => [u, 4096]));
    const batches = fetchBatches(uids, sizes, 25 * MB);
    assert.equal(batches.length, 10_000 / MAX_BATCH_MESSAGES);
    assert.ok(batches.every((b) => b.length <= MAX_BATCH_MESSAGES));
    assert.deepEqual(batches.flat(), uids);
  });

  it('holds at most twice max_message_mb of mail in one batch', () => {
    const uids = Array.from({ length: 40 }, (_, i) => i + 1);
    // 10 MB each with a 25 MB limit: five would be 50 MB, so batches of five at most.
    const sizes = new Map(uids.map((u) => [u, 10 * MB]));
    const batches = fetchBatches(uids, sizes, 25 * MB);
    for (const b of batches) {
      const bytes = b.reduce((n, u) => n + sizes.get(u)!, 0);
      assert.ok(bytes <= 50 * MB, `a batch of ${bytes / MB} MB`);
    }
    assert.deepEqual(batches.flat(), uids);
  });

  it('counts a mail over the limit (fetched as header only) at the limit, alone if need be', () => {
    const sizes = new Map([
      [1, 90 * MB],
      [2, 90 * MB],
      [3, 1000],
    ]);
    assert.deepEqual(fetchBatches([1, 2, 3], sizes, 25 * MB), [[1, 2], [3]]);
  });
});
