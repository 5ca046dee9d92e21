import { closeSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ErrandError } from '../util/errors.ts';
import { processStart } from '../util/process-start.ts';

/** Held by the running `errand start` of a state folder. */
export const LOCK_FILE = 'errand.lock';
/** Names that errand's PID, for the message a second start gives. */
export const PID_FILE = 'errand.pid';

/** SQLite's "database is locked". */
const SQLITE_BUSY = 5;

export interface InstanceLock {
  /** Lets the next `errand start` have the state folder (also on any exit of this process). */
  release(): void;
}

interface Holder {
  pid: number;
  /** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
  start: string;
}

function readHolder(dir: string): Holder | undefined {
  try {
    const h = JSON.parse(readFileSync(join(dir, PID_FILE), 'utf8')) as Partial<Holder>;
    return typeof h.pid === 'number' && typeof h.start === 'string'
      ? { pid: h.pid, start: h.start }
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The PID the holder of the lock wrote, once it names a live process that started when
 * the file says (a PID of a dead errand may have been reused). The holder writes it right
 * after taking the lock, so a start that lost a race waits for it a moment.
 */
async function holderPid(dir: string): Promise<number | undefined> {
  for (let i = 0; i < 40; i++) {
    const h = readHolder(dir);
    if (h && processStart(h.pid) === h.start) return h.pid;
    await new Promise((r) => setTimeout(r, 50));
  }
  return undefined;
}

/**
 * Takes the state folder for this process, before anything in it is touched: a second
 * `errand start` on it would remove the first one's containers as orphans and mark its
 * running tasks interrupted. The lock is SQLite's exclusive lock on `<dir>/errand.lock`,
 * a POSIX record lock the kernel drops when the process ends however it ends, so a lock
 * is never stale and two starts at once cannot both win. The file itself stays (removing
 * it could hand two processes two different files); `errand.pid` only names the holder.
 * A folder already held is `already_running`, naming the holder's PID.
 */
export async function lockStateDir(dir: string): Promise<InstanceLock> {
  const lockFile = join(dir, LOCK_FILE);
  // SQLite would make it 0644; it holds nothing, but the state folder's files are private.
  closeSync(openSync(lockFile, 'a', 0o600));
  const db = new DatabaseSync(lockFile);
  try {
    // No journal file: nothing is ever written, the transaction only holds the lock.
    db.exec('PRAGMA journal_mode = MEMORY');
    db.exec('BEGIN EXCLUSIVE');
  } catch (e) {
    db.close();
    if ((e as { errcode?: number }).errcode !== SQLITE_BUSY) throw e;
    const pid = await holderPid(dir);
    throw new ErrandError(
      'already_running',
      `the state folder ${dir} is in use by a running errand${pid ? ` (PID ${pid})` : ''}. Stop that one first${pid ? ` (systemctl --user stop errand, or kill ${pid})` : ''}, or give this one another execution.state_dir.`,
    );
  }
  const me: Holder = { pid: process.pid, start: processStart(process.pid) ?? '' };
  const pidFile = join(dir, PID_FILE);
  writeFileSync(`${pidFile}.${process.pid}`, `${JSON.stringify(me)}\n`, { mode: 0o600 });
  renameSync(`${pidFile}.${process.pid}`, pidFile);
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    process.off('exit', release);
    const h = readHolder(dir);
    if (h?.pid === me.pid && h.start === me.start) unlinkSync(pidFile);
    db.close();
  };
  // The database object must live as long as the lock: closing it (or its collection)
  // drops the lock. This listener holds it.
  process.on('exit', release);
  return { release };
}
