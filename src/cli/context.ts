import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  type ConfigLoadResult,
  formatConfigIssues,
  loadServerConfig,
  type ServerConfig,
  stateDir,
} from '../config/index.ts';
import { openSqliteStore, type Store } from '../store/index.ts';
import { ErrandError } from '../util/errors.ts';

/** Loads the server config for a command, turning missing and invalid into ErrandErrors. */
export async function requireConfig(
  path: string | undefined,
): Promise<{ config: ServerConfig; result: Extract<ConfigLoadResult, { status: 'ok' }> }> {
  const result = await loadServerConfig({ path, env: process.env, cwd: process.cwd() });
  if (result.status === 'missing') {
    throw new ErrandError(
      'config_missing',
      `No config file at ${result.path}. Create one with: errand init --config ${result.path}`,
    );
  }
  if (result.status === 'invalid') {
    throw new ErrandError(
      'config_invalid',
      `The config is invalid:\n${formatConfigIssues(result.issues)}\nFix the file and run: errand check`,
    );
  }
  return { config: result.config, result };
}

export function storePath(config: ServerConfig): string {
  return join(stateDir(config, process.env), 'errand.db');
}

export function controlTokenPath(config: ServerConfig): string {
  return join(stateDir(config, process.env), 'control-token');
}

/** Where the running errand's API answers, for commands on the same machine. */
export function controlBaseUrl(config: ServerConfig): string {
  const host =
    config.dashboard.host === '0.0.0.0' || config.dashboard.host === '::'
      ? '127.0.0.1'
      : config.dashboard.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.dashboard.port}`;
}

export function openStore(config: ServerConfig): Store {
  return openSqliteStore(storePath(config));
}

/**
 * The store for a read-only command (`status`, `conversations`), or undefined when errand
 * has never stored anything there: looking must not create the state folder.
 */
export function openExistingStore(config: ServerConfig): Store | undefined {
  const path = storePath(config);
  return existsSync(path) ? openSqliteStore(path) : undefined;
}
