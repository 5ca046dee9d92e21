import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { processStart } from './process-start.ts';

/** This process's start time, in the names it owns; none where /proc cannot say it. */
const OWN_START = processStart(process.pid);

/**
 * Names of files and folders that belong to one errand process while it runs (a
 * container's env file, its copies of errand's files, a build context, spare conversation
 * folders): `<prefix><pid>.<start>-<random>`, and maybe a suffix. Several errand processes
 * may share a folder (a gateway and `errand sandbox run`, two installations on one sandbox
 * folder), so what a crashed process left is told from what a live one uses by the process
 * in the name: its id and when it started, since a pid alone comes back (an errand
 * restarted as PID 1 of a container has the pid of the one that crashed, and would take
 * its leftovers for its own).
 */
export function ownedName(prefix = ''): string {
  const owner = OWN_START === undefined ? `${process.pid}` : `${process.pid}.${OWN_START}`;
  return `${prefix}${owner}-${randomBytes(6).toString('hex')}`;
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

/** Whether the process that made a name with `pid` (and `start`, when it has one) runs. */
function ownerRuns(pid: number, start: string | undefined): boolean {
  if (start === undefined) return alive(pid);
  const now = processStart(pid);
  // Unreadable (another user's process, /proc mounted with hidepid): it may be the owner.
  return now === undefined ? alive(pid) : now === start;
}

/**
 * Whether a name made by ownedName(prefix) was left by a process that is gone. A name with
 * the prefix but no process id counts as left behind; one with a pid but no start time
 * (made by an older errand) by whether that pid runs.
 */
export function leftBehind(name: string, prefix = ''): boolean {
  if (!name.startsWith(prefix)) return false;
  const m = /^(\d+)(?:\.(\d+))?-/.exec(name.slice(prefix.length));
  return !m || !ownerRuns(Number(m[1]), m[2]);
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
