/**
 * An executor whose tasks emit agent-like events over time, for live views: a prompt
 * containing "slow" writes a plan, then a tool call and its result, then text every
 * 200 ms until stopped; anything else answers at once. Its network log is a fixed list.
 */
import type {
  EventSink,
  NetworkRequest,
  TaskExecutor,
  TaskOutcome,
  TaskRun,
} from '../../src/gateway/ports.ts';

export class LiveExecutor implements TaskExecutor {
  readonly runs: TaskRun[] = [];
  readonly network: NetworkRequest[] = [
    {
      time: '2026-11-24T10:00:00.000Z',
      action: 'allowed',
      method: 'GET',
      url: 'https://api.github.com/repos/acme/app/pulls',
      status: 200,
      swapped: ['GH_TOKEN'],
    },
    {
      time: '2026-11-24T10:00:01.000Z',
      action: 'blocked',
      method: 'POST',
      url: 'https://evil.example/upload',
      status: 403,
      code: 'host_not_allowed',
      swapped: [],
    },
  ];

  async run(run: TaskRun, signal: AbortSignal, events: EventSink): Promise<TaskOutcome> {
    this.runs.push(run);
    const text = run.parts.map((p) => p.text).join('\n');
    const sessionId = run.conversation.sessionId ?? `s-${run.conversation.id}`;
    if (!text.includes('slow')) {
      await events.event('claude.assistant', {
        message: { content: [{ type: 'text', text: `Answer to: ${text}` }] },
      });
      return {
        kind: 'success',
        text: `**Done**: ${text}`,
        files: [],
        sessionId,
        usage: { costUsd: 0.02, turns: 2, inputTokens: 100, outputTokens: 20, durationMs: 1000 },
      };
    }
    await events.event('plan', {
      items: [
        { content: 'Read the code', status: 'completed' },
        { content: 'Fix the bug', status: 'in_progress' },
      ],
    });
    await events.event('claude.assistant', {
      message: {
        content: [{ type: 'tool_use', id: 'tu1', name: 'Bash', input: { command: 'npm test' } }],
      },
    });
    await events.event('claude.user', {
      message: {
        content: [
          { type: 'tool_result', tool_use_id: 'tu1', content: 'ok 1 - adds\nok 2 - subtracts' },
        ],
      },
    });
    for (let i = 1; !signal.aborted && i < 10_000; i++) {
      await events.event('claude.assistant', {
        message: { content: [{ type: 'text', text: `Working, step ${i}` }] },
      });
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 200);
        signal.addEventListener('abort', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return { kind: 'stopped', text: 'Stopped while working.', files: [], sessionId };
  }

  async networkLog(): Promise<NetworkRequest[]> {
    return this.network;
  }
}
