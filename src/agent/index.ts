export { buildPrompt, ClaudeCodeRunner } from './claude-runner.ts';
