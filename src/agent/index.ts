export { buildPrompt, buildRecoveryPrompt, ClaudeCodeRunner, claudeArgs } from './claude-runner.ts';
export { chooseReply } from './reply.ts';
