export { buildPrompt, buildRecoveryPrompt, ClaudeCodeRunner } from './claude-runner.ts';
export { chooseReply } from './reply.ts';
