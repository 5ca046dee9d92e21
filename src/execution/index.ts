export * from './agent-seam.ts';
export { SandboxExecutor, type SandboxExecutorOptions, WIND_DOWN_MS } from './sandbox-executor.ts';
