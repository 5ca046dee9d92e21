export {
  type ConfigIssue,
  type ConfigLoadResult,
  defaultCacheDir,
  defaultConfigPath,
  defaultStateDir,
  formatConfigIssues,
  loadServerConfig,
  parseDotenv,
  stateDir,
} from './load.ts';
export { changedRepos, watchConfig } from './reload.ts';
export { type RepoConfig, type ServerConfig, serverConfigSchema } from './schema.ts';
export { STARTER_CONFIG } from './starter.ts';
