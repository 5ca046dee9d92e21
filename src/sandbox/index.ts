export { DEFAULT_CLAUDE_CODE_VERSION, ensureClaudeCli, sandboxClaudeCli } from './claude-cli.ts';
export {
  type ContainerOutcome,
  type ContainerResult,
  type ContainerSpec,
  KEPT_CAPABILITIES,
  MANAGED_LABEL,
  removeContainer,
  removeOrphans,
  runContainer,
  type SandboxLimits,
  type SandboxMount,
  type SandboxNetwork,
} from './container.ts';
export {
  type ContainerFile,
  type ContainerFolders,
  containerFolders,
  HOSTS_FILE,
  removeLeftContainerFiles,
  SANDBOX_HOSTNAME,
} from './container-folders.ts';
export type { SandboxCommand, SandboxDriver, SandboxHold } from './driver.ts';
export {
  CA_CERT,
  CLAUDE_BIN,
  ENTRYPOINT,
  ENTRYPOINT_FILE,
  ENTRYPOINT_SCRIPT,
  ERRAND_DIR,
} from './entrypoint.ts';
export { type HeldCommand, type HeldSandbox, TASK_DIR } from './held-container.ts';
export {
  type BuildResult,
  containerfileOf,
  contextHash,
  IMAGE_REPO,
  ImageCache,
} from './image-cache.ts';
export {
  type AcceptConnection,
  openSandboxNetns,
  SANDBOX_ADDRESS,
  type SandboxNetns,
  startSandboxNetns,
  WarmNetns,
} from './netns.ts';
export { BASE_IMAGE, containersConf, ensurePodmanEnv, podmanVersion, runPodman } from './podman.ts';
export { PodmanSandbox } from './podman-driver.ts';
export {
  parseSandboxFile,
  type SandboxFile,
  type SandboxFileOptions,
  type SandboxFileParse,
  sandboxFileSchema,
} from './sandbox-config.ts';
