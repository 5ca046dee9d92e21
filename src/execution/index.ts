export * from './agent-seam.ts';
export { SandboxExecutor, type SandboxExecutorOptions } from './sandbox-executor.ts';
