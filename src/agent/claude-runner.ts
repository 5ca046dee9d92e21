import type {
  AgentRunner,
  EventSink,
  PromptPart,
  SandboxExecResult,
  TaskOutcome,
  TaskRun,
} from '../gateway/ports.ts';
import { SANDBOX_PATHS } from '../gateway/ports.ts';
import type { TaskUsage } from '../store/types.ts';

/** Claude Code's own state (sessions) lives in the conversation's agent folder. */
const CONFIG_DIR = `${SANDBOX_PATHS.agentState}/claude`;

/** What the agent is told about where it runs, before the person's messages. */
function context(run: TaskRun): string {
  return [
    'You are working on a task sent through errand, from a conversation thread (email, Slack or a web page).',
    `The repository is checked out at ${SANDBOX_PATHS.workspace}; it and ${SANDBOX_PATHS.storage} persist between the tasks of this conversation.`,
    `Files you put in ${SANDBOX_PATHS.outbox} are sent back with your reply. Files the person attached are in ${SANDBOX_PATHS.inbox}.`,
    'Your last message is the reply the person reads. Nobody can answer questions while you work: decide, and say what you assumed.',
    run.firstTask ? '' : 'This continues an earlier task of the same conversation.',
  ]
    .filter(Boolean)
    .join('\n');
}

export function buildPrompt(run: TaskRun): string {
  const parts = run.parts.map((p: PromptPart) => {
    const files = p.attachments.length
      ? `\n(attached, in ${SANDBOX_PATHS.inbox}: ${p.attachments.map((a) => a.name).join(', ')})`
      : '';
    return `From ${p.sender} at ${new Date(p.at).toISOString()}:\n${p.text}${files}`;
  });
  return `${context(run)}\n\n${parts.join('\n\n')}\n`;
}

interface StreamResult {
  type: 'result';
  subtype?: string;
  is_error?: boolean;
  result?: string;
  session_id?: string;
  total_cost_usd?: number;
  num_turns?: number;
  duration_ms?: number;
  usage?: {
    input_tokens?: number;
    output_tokens?: number;
    cache_read_input_tokens?: number;
    cache_creation_input_tokens?: number;
    server_tool_use?: { web_search_requests?: number; web_fetch_requests?: number };
  };
}

/**
 * Runs the Claude Code CLI in the task's sandbox (`claude -p`, stream-json), resuming the
 * conversation's session when there is one, recording every event as it arrives, and
 * turning the result event into the reply, cost and usage.
 */
export class ClaudeCodeRunner implements AgentRunner {
  async run(
    input: Parameters<AgentRunner['run']>[0],
    signal: AbortSignal,
    events: EventSink,
  ): Promise<TaskOutcome> {
    const { run } = input;
    const args = [
      'claude',
      '-p',
      '--output-format',
      'stream-json',
      '--verbose',
      '--dangerously-skip-permissions',
      '--model',
      input.model,
    ];
    if (run.conversation.sessionId) args.push('--resume', run.conversation.sessionId);
    if (input.effort) args.push('--effort', input.effort);
    let buffer = '';
    let result: StreamResult | undefined;
    let sessionId = run.conversation.sessionId;
    let lastText = '';
    const tail: string[] = [];
    let pending = Promise.resolve();
    const onLine = (line: string) => {
      if (!line.trim()) return;
      tail.push(line);
      if (tail.length > 20) tail.shift();
      let ev: {
        type?: string;
        session_id?: string;
        message?: { content?: Array<{ type: string; text?: string }> };
      };
      try {
        ev = JSON.parse(line);
      } catch {
        pending = pending.then(() => events.event('agent_output', { line }));
        return;
      }
      if (ev.session_id) sessionId = ev.session_id;
      if (ev.type === 'assistant') {
        const text =
          ev.message?.content
            ?.filter((c) => c.type === 'text')
            .map((c) => c.text ?? '')
            .join('') ?? '';
        if (text.trim()) lastText = text;
      }
      if (ev.type === 'result') result = ev as StreamResult;
      // Events are stored in order, one after another, as they arrive.
      pending = pending.then(() => events.event(`claude.${ev.type ?? 'unknown'}`, ev));
    };
    const r: SandboxExecResult = await input.exec({
      command: args,
      stdin: buildPrompt(run),
      env: {
        CLAUDE_CONFIG_DIR: CONFIG_DIR,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        DISABLE_AUTOUPDATER: '1',
        CLAUDE_CODE_MAX_RETRIES: '2',
      },
      onStdout: (c) => {
        buffer += c.toString('utf8');
        let i = buffer.indexOf('\n');
        while (i >= 0) {
          onLine(buffer.slice(0, i));
          buffer = buffer.slice(i + 1);
          i = buffer.indexOf('\n');
        }
      },
    });
    if (buffer) onLine(buffer);
    await pending;
    const usage: TaskUsage | undefined = result && {
      costUsd: result.total_cost_usd,
      turns: result.num_turns,
      durationMs: result.duration_ms,
      inputTokens: result.usage?.input_tokens,
      outputTokens: result.usage?.output_tokens,
      cacheReadTokens: result.usage?.cache_read_input_tokens,
      cacheCreationTokens: result.usage?.cache_creation_input_tokens,
      webSearches: result.usage?.server_tool_use?.web_search_requests,
      webFetches: result.usage?.server_tool_use?.web_fetch_requests,
    };
    const lastLines = [...tail.slice(-5), r.stderrTail].filter(Boolean).join('\n').slice(-2000);
    if (r.outcome === 'stopped' || signal.aborted)
      return { kind: 'stopped', text: lastText, files: [], sessionId, usage };
    if (r.outcome === 'timeout') {
      return {
        kind: 'timeout',
        text: `The task ran past its time limit and was stopped. Work done so far is saved; reply to continue.\n\nLast output:\n${lastLines}`,
        files: [],
        sessionId,
        usage,
        detail: 'timeout',
      };
    }
    if (result && !result.is_error && result.subtype === 'success') {
      const text =
        result.result?.trim() || lastText.trim() || 'The agent finished without writing a reply.';
      return { kind: 'success', text, files: [], sessionId, usage };
    }
    return {
      kind: 'failure',
      text: `The agent did not finish (${r.outcome === 'exited' ? `exit ${r.exitCode}` : r.outcome}${result?.subtype ? `, ${result.subtype}` : ''}). Reply to try again.\n\nLast output:\n${lastLines}`,
      files: [],
      sessionId,
      usage,
      detail: r.outcome === 'exited' ? 'agent_failed' : r.outcome,
    };
  }
}
