import { basename } from 'node:path';

/**
 * The repository id errand gives a checkout's folder, on embedded defaults and in the
 * config `errand init` writes: its name, reduced to what an id may hold (`repo` when
 * nothing is left).
 */
export function repoIdOfFolder(folder: string): string {
  return (
    basename(folder)
      .replace(/[^A-Za-z0-9_.-]/g, '-')
      .replace(/^[^A-Za-z0-9]+/, '')
      .slice(0, 64) || 'repo'
  );
}
