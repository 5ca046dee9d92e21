/**
 * The seam between task execution and the agent: what an agent runner gets (a way to run
 * commands in the prepared sandbox, and where the conversation's folders appear there) and
 * what it returns. The gateway does not see it: it hands a whole task to a TaskExecutor.
 */
import type { EventSink, TaskOutcome, TaskRun } from '../gateway/index.ts';

/** One command run in the task's prepared sandbox (workspace, mounts, network in place). */
export interface SandboxExecRequest {
  command: string[];
  stdin?: string;
  /** Extra variables for this command. */
  env?: Record<string, string>;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
}

export interface SandboxExecResult {
  outcome: 'exited' | 'timeout' | 'oom' | 'stopped' | 'failed_to_start';
  exitCode: number | null;
  stderrTail: string;
}

/** Where the conversation's folders appear inside the sandbox. */
export const SANDBOX_PATHS = {
  workspace: '/workspace',
  agentState: '/errand/agent',
  inbox: '/inbox',
  outbox: '/outbox',
  storage: '/storage',
} as const;

/**
 * Runs the agent for one task. It gets a way to run commands in the task's sandbox and
 * knows nothing of podman, the proxy or git; the sandbox executor prepares all of that.
 */
export interface AgentRunner {
  /** True when the agent needs the repository's model credential (agent.api_key or oauth_token). */
  readonly needsModelCredential?: boolean;
  run(
    input: {
      run: TaskRun;
      exec: (req: SandboxExecRequest) => Promise<SandboxExecResult>;
      outbox: string;
      model: string;
      /** Reasoning effort from the repository's config, when set. */
      effort?: string;
    },
    signal: AbortSignal,
    events: EventSink,
  ): Promise<TaskOutcome>;
}
