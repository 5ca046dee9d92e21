import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { Secret } from '../util/secret.ts';
import { type ConfigLoadResult, loadServerConfig } from './load.ts';
import type { ServerConfig } from './schema.ts';

// Secrets compare by value: a rotated password is a changed repository.
function canonical(v: unknown): unknown {
  if (v instanceof Secret) return { secret: v.reveal() };
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

export function changedRepos(
  before: ServerConfig,
  after: ServerConfig,
): { added: string[]; removed: string[]; changed: string[] } {
  const a = Object.keys(before.repos);
  const b = Object.keys(after.repos);
  return {
    added: b.filter((id) => !(id in before.repos)),
    removed: a.filter((id) => !(id in after.repos)),
    changed: b.filter(
      (id) =>
        id in before.repos &&
        JSON.stringify(canonical(before.repos[id])) !== JSON.stringify(canonical(after.repos[id])),
    ),
  };
}

/**
 * Calls `onChange` with the reloaded config after the file changes. The folder is watched,
 * not the file: editors save by writing a new file and renaming it over the old one.
 * Bursts of events are debounced.
 */
export function watchConfig(
  path: string,
  onChange: (r: ConfigLoadResult) => void,
  debounceMs = 200,
): { close(): void } {
  const name = basename(path);
  let timer: NodeJS.Timeout | undefined;
  const watcher: FSWatcher = watch(dirname(path), (_event, file) => {
    if (file !== null && file !== name && file !== '.env' && file !== 'secrets.env') return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      void loadServerConfig({ path }).then(onChange, () => undefined);
    }, debounceMs);
  });
  watcher.on('error', () => undefined);
  return {
    close() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}
