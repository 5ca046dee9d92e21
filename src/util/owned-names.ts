import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Names of files and folders that belong to one errand process while it runs (a
 * container's env file, its copies of errand's files, a build context, spare conversation
 * folders): `<prefix><pid>-<random>`, and maybe a suffix. Several errand processes may share a folder (a
 * gateway and `errand sandbox run`, two installations on one sandbox folder), so what a
 * crashed process left is told from what a live one uses by the process id in the name.
 */
export function ownedName(prefix = ''): string {
  return `${prefix}${process.pid}-${randomBytes(6).toString('hex')}`;
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: the process exists, under another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether a name made by ownedName(prefix) was left by a process that is gone. A name with
 * the prefix but no process id (made by an older errand) counts as left behind.
 */
export function leftBehind(name: string, prefix = ''): boolean {
  if (!name.startsWith(prefix)) return false;
  const m = /^(\d+)-/.exec(name.slice(prefix.length));
  return !m || !alive(Number(m[1]));
}

/**
 * Deletes the entries of `root` with the prefix that were left by a process that is gone
 * (after a crash), and returns their names; a missing `root` has none.
 */
export function removeLeftBehind(root: string, prefix = ''): string[] {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const stale = names.filter((n) => leftBehind(n, prefix));
  for (const n of stale) rmSync(join(root, n), { recursive: true, force: true });
  return stale;
}
