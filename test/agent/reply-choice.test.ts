import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseReply } from '../../src/agent/index.ts';

describe('the reply', () => {
  it('is the final result when it is the answer', () => {
    assert.equal(
      chooseReply('The fix is in PR #4.', ['Looking at it.', 'The fix is in PR #4.']),
      'The fix is in PR #4.',
    );
  });

  it('is the long answer, with the sign-off under it, when the final message is a short sign-off', () => {
    const long = 'A detailed answer. '.repeat(60).trim();
    assert.equal(chooseReply('Done!', [long, 'Done!']), `${long}\n\nDone!`);
  });

  it('stays the final message when nothing earlier is much longer', () => {
    assert.equal(chooseReply('All good.', ['Checking.', 'All good.']), 'All good.');
  });

  it('is never empty', () => {
    assert.match(chooseReply('', []), /finished without writing a reply/);
    assert.equal(chooseReply('  ', ['Last text']), 'Last text');
  });
});
