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
  type BuildResult,
  containerfileOf,
  contextHash,
  IMAGE_REPO,
  ImageCache,
} from './image-cache.ts';
export { BASE_IMAGE, containersConf, ensurePodmanEnv, podmanVersion, runPodman } from './podman.ts';
export { type SandboxFile, sandboxFileSchema } from './sandbox-config.ts';
