import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_LINE_CHARS, StreamState } from '../../src/agent/stream.ts';

function recorder() {
  const events: Array<{ kind: string; data: unknown }> = [];
  return {
    events,
    sink: {
      event: async (kind: string, data: unknown) => {
        events.push({ kind, data });
      },
    },
  };
}

describe('the CLI’s stream-json lines', () => {
  it('reads a character split between two chunks of output whole', async () => {
    const r = recorder();
    const state = new StreamState(undefined, r.sink);
    const line = Buffer.from(
      `${JSON.stringify({ type: 'assistant', message: { content: [{ type: 'text', text: 'größer ✓' }] } })}\n`,
    );
    const at = line.indexOf(Buffer.from('✓')) + 1; // inside the three bytes of ✓
    state.push(line.subarray(0, at));
    state.push(line.subarray(at));
    await state.end();
    assert.deepEqual(state.texts, ['größer ✓']);
  });

  it('keeps a line just within the limit whole, and only the start of a longer one', async () => {
    const r = recorder();
    const state = new StreamState(undefined, r.sink);
    const within = 'x'.repeat(MAX_LINE_CHARS);
    state.push(Buffer.from(`${within}\n`));
    state.push(Buffer.from('y'.repeat(MAX_LINE_CHARS)));
    state.push(Buffer.from('y\n{"type":"result","subtype":"success","result":"ok"}\n'));
    await state.end();
    const outputs = r.events.filter((e) => e.kind === 'agent_output').map((e) => e.data);
    assert.deepEqual(outputs, [
      { line: within },
      { line: 'y'.repeat(500), chars: MAX_LINE_CHARS + 1 },
    ]);
    assert.equal(state.result?.result, 'ok', 'the next line is read as before');
  });
});
