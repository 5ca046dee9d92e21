export {
  type ConfigIssue,
  type ConfigLoadResult,
  type ConfigWarning,
  defaultCacheDir,
  defaultConfigPath,
  defaultSandboxDir,
  defaultStateDir,
  formatConfigIssues,
  loadServerConfig,
  parseDotenv,
  sandboxDir,
  stateDir,
} from './load.ts';
export { changedRepos, watchConfig } from './reload.ts';
export { repoIdOfFolder } from './repo-id.ts';
export { type RepoConfig, type ServerConfig, serverConfigSchema } from './schema.ts';
export { type StarterRepo, starterConfig } from './starter.ts';
