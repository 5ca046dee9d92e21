import type { AgentRunner } from '../../src/execution/index.ts';
import type { TaskOutcome } from '../../src/gateway/index.ts';

/**
 * An agent for executor tests: the task's text is a bash script run in the sandbox, and
 * its output is the reply. The Claude Code runner replaces it in production.
 */
export class ShellAgent implements AgentRunner {
  async run(input: Parameters<AgentRunner['run']>[0], _signal: AbortSignal): Promise<TaskOutcome> {
    const script = input.run.parts.map((p) => p.text).join('\n');
    let out = '';
    const r = await input.exec({
      command: ['bash', '-c', script],
      onStdout: (c) => (out += c.toString()),
    });
    if (r.outcome === 'stopped') return { kind: 'stopped', text: out, files: [] };
    if (r.outcome === 'timeout') return { kind: 'timeout', text: out, files: [] };
    return {
      kind: r.exitCode === 0 ? 'success' : 'failure',
      text: out || r.stderrTail,
      files: [],
      detail: r.outcome,
    };
  }
}
