import {
  chmodSync,
  closeSync,
  constants,
  type Dir,
  fstatSync,
  lstatSync,
  opendirSync,
  openSync,
  rmdirSync,
  type Stats,
  unlinkSync,
} from 'node:fs';
import { setImmediate as turn } from 'node:timers/promises';

/**
 * Deleting what a sandbox wrote, as errand's own user, without following a link.
 *
 * A sandbox's folders hold what the agent left: folders it made unreadable or unwritable
 * (0500, 0000) so that `fs.rm` fails with EACCES, links to host folders, names that are
 * not UTF-8, trees deeper than PATH_MAX. Node has no `*at` calls, so every step names its
 * entry through the descriptor of the folder it is in (`/proc/self/fd/N/name`): the kernel
 * resolves nothing but that one name, never follows a link there (unlink, rmdir and lstat
 * do not; folders are opened with O_NOFOLLOW), and no path longer than one name is built.
 */

/** open(2)'s O_PATH (Linux; Node does not name it): names a folder even without read permission. */
const O_PATH = 0o10000000;
const FOLDER = O_PATH | constants.O_NOFOLLOW | constants.O_DIRECTORY;
/** Names read from a folder at once; its listing is read on once these are handled. */
const NAMES_PER_READ = 1000;
/**
 * Folders held open along the way down (two descriptors each: the folder and its
 * listing); the folders above are opened again through `..`.
 */
const OPEN_LEVELS = 64;
/**
 * Entries handled between two turns of the event loop. The calls are synchronous (each
 * asynchronous one is a trip through libuv's pool, for a few microseconds of work), so a
 * big tree must still let errand answer meanwhile.
 */
const ENTRIES_PER_TURN = 256;

export type TreeNotRemovedReason =
  /** An entry errand's user may not remove, e.g. in a folder of another uid. */
  | 'not_permitted'
  /** A folder on another file system (a mount) is not descended into. */
  | 'other_file_system'
  /** A folder changed while it was removed (something else is writing to the tree). */
  | 'changed'
  | 'failed';

/**
 * The tree was not removed entirely; what is left stays where it was. The message names no
 * entry (agent-chosen names reach logs only, through `example`).
 */
export class TreeNotRemovedError extends Error {
  readonly code = 'tree_not_removed';
  readonly reason: TreeNotRemovedReason;
  /** The tree asked for. */
  readonly path: string;
  /** How many entries could not be removed (folders above them not counted). */
  readonly left: number;
  /** The first entry left, relative to `path`, with its owner, for the log. */
  readonly example: { entry: string; uid?: number; errno?: string };

  constructor(o: {
    path: string;
    reason: TreeNotRemovedReason;
    left: number;
    example: TreeNotRemovedError['example'];
  }) {
    const what = {
      not_permitted: 'errand’s user may not remove them',
      other_file_system: 'they are on another file system',
      changed: 'the folder changed while it was removed',
      failed: `removing them failed (${o.example.errno ?? 'unknown error'})`,
    }[o.reason];
    super(`${o.left} entr${o.left === 1 ? 'y was' : 'ies were'} not removed: ${what}`);
    this.name = 'TreeNotRemovedError';
    this.reason = o.reason;
    this.path = o.path;
    this.left = o.left;
    this.example = o.example;
  }
}

interface Level {
  /** An O_PATH descriptor of the folder; undefined while closed to bound descriptors. */
  fd: number | undefined;
  dev: number;
  ino: number;
  /** Its name in the folder above (bytes: a name need not be UTF-8). */
  name: Buffer;
  /**
   * Its listing, read on from where the last batch ended: read again from the start, a
   * folder of many entries that stay (another uid's) would cost its length per batch.
   */
  dir: Dir | undefined;
  /** Its listing was read to the end: every name in it was handed out once. */
  listed: boolean;
  /** Names read and not yet handled. */
  pending: Buffer[];
  /** Names handled that are still there (their failure is counted), by their bytes. */
  stuck: Set<string>;
  /** Nothing more is tried in it: errand's user may not remove its entries. */
  abandoned: boolean;
}

function fdPath(l: Level, name?: Buffer): Buffer {
  const dir = Buffer.from(`/proc/self/fd/${l.fd!}`);
  return name ? Buffer.concat([dir, Buffer.from('/'), name]) : dir;
}

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

class Failures {
  count = 0;
  first: { reason: TreeNotRemovedReason; example: TreeNotRemovedError['example'] } | undefined;
  readonly path: string;
  constructor(path: string) {
    this.path = path;
  }

  add(stack: Level[], name: Buffer, reason: TreeNotRemovedReason, e?: unknown, st?: Stats) {
    this.count++;
    if (this.first) return;
    const entry = Buffer.concat(
      [...stack.slice(1).map((l) => l.name), name].flatMap((n, i) =>
        i ? [Buffer.from('/'), n] : [n],
      ),
    ).toString('utf8');
    this.first = { reason, example: { entry, uid: st?.uid, errno: errno(e) } };
  }

  check(): void {
    if (!this.first) return;
    throw new TreeNotRemovedError({ path: this.path, left: this.count, ...this.first });
  }
}

function reasonOf(e: unknown): TreeNotRemovedReason {
  const code = errno(e);
  return code === 'EACCES' || code === 'EPERM' ? 'not_permitted' : 'failed';
}

/**
 * Opens a folder without following a link and gives errand's user all rights on it when it
 * is the user's own (the agent, root in a rootless sandbox, owns what it made). `expected`
 * is what lstat saw at its name: anything else there now is not descended into.
 */
function openFolder(path: Buffer | string, name: Buffer, expected: Stats | undefined): Level {
  const fd = openSync(path, FOLDER);
  try {
    const st = fstatSync(fd);
    if (expected && (st.dev !== expected.dev || st.ino !== expected.ino))
      throw Object.assign(new Error('changed'), { code: 'ECHANGED' });
    const uid = process.getuid?.();
    if (uid !== 0 && st.uid === uid && (st.mode & 0o700) !== 0o700)
      chmodSync(`/proc/self/fd/${fd}`, (st.mode & 0o7777) | 0o700);
    return {
      fd,
      dev: st.dev,
      ino: st.ino,
      name,
      dir: undefined,
      listed: false,
      pending: [],
      stuck: new Set(),
      abandoned: false,
    };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/**
 * The folder's next names; none once its listing is read to the end. Removing entries
 * meanwhile is fine: readdir returns every entry that stays exactly once (POSIX). A listing
 * closed before its end (to bound descriptors) is read again from the start, and the names
 * that stayed are skipped.
 */
function readNames(l: Level): Buffer[] {
  const names: Buffer[] = [];
  if (l.listed) return names;
  l.dir ??= opendirSync(fdPath(l), {
    // Typed as strings only; Node gives Buffer names with 'buffer'.
    encoding: 'buffer' as BufferEncoding,
    bufferSize: 128,
  });
  while (names.length < NAMES_PER_READ) {
    const e = l.dir.readSync();
    if (!e) {
      closeListing(l);
      l.listed = true;
      break;
    }
    const name = e.name as unknown as Buffer;
    if (!l.stuck.has(name.toString('latin1'))) names.push(name);
  }
  return names;
}

function closeListing(l: Level): void {
  l.dir?.closeSync();
  l.dir = undefined;
}

function close(l: Level): void {
  closeListing(l);
  if (l.fd === undefined) return;
  closeSync(l.fd);
  l.fd = undefined;
}

/**
 * Opens the folder above `child` again, through its `..`; false when that is not the
 * folder the walk came down from (it was moved meanwhile).
 */
function reopenAbove(child: Level, above: Level): boolean {
  const fd = openSync(Buffer.concat([fdPath(child), Buffer.from('/..')]), FOLDER);
  const st = fstatSync(fd);
  if (st.dev !== above.dev || st.ino !== above.ino) {
    closeSync(fd);
    return false;
  }
  above.fd = fd;
  return true;
}

/**
 * Deletes `path` and everything in it, as errand's own user: folders the user owns are made
 * writable on the way down, a link is removed and never followed (what it points to is
 * untouched), no other file system is entered. Nothing at `path`: nothing to do. `path`'s
 * own folders must be errand's (nothing else can change them); the tree below need not be,
 * but nothing may write to it meanwhile. Fails with TreeNotRemovedError when anything is left
 * (everything else is removed), e.g. entries of another uid in a folder of theirs.
 */
export async function removeTree(path: string | Buffer): Promise<void> {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (e) {
    if (errno(e) === 'ENOENT') return;
    throw e;
  }
  const failures = new Failures(path.toString());
  const here = Buffer.from('.');
  if (!st.isDirectory()) {
    const e = attempt(() => unlinkSync(path));
    if (e && errno(e) !== 'ENOENT') failures.add([], here, reasonOf(e), e, st);
    failures.check();
    return;
  }
  let top: Level | undefined;
  try {
    top = openFolder(path, here, st);
  } catch (e) {
    failures.add([], here, reasonOf(e), e, st);
  }
  const stack = top ? [top] : [];
  let handled = 0;
  try {
    while (stack.length) {
      if (++handled % ENTRIES_PER_TURN === 0) await turn();
      const cur = stack.at(-1)!;
      if (!cur.pending.length && !cur.abandoned) {
        try {
          cur.pending = readNames(cur);
        } catch (e) {
          // A folder of another uid that errand's user may not read.
          failures.add(stack.slice(0, -1), cur.name, reasonOf(e), e);
          cur.abandoned = true;
        }
      }
      const name = cur.abandoned ? undefined : cur.pending.pop();
      if (name === undefined) {
        // Empty now, but for what could not go: remove it from the folder above.
        stack.pop();
        const above = stack.at(-1);
        if (!above) {
          stack.push(cur);
          break;
        }
        if (above.fd === undefined && !reopenAbove(cur, above)) {
          failures.add(stack, cur.name, 'changed');
          stack.push(cur);
          break;
        }
        close(cur);
        const e = attempt(() => rmdirSync(fdPath(above, cur.name)));
        if (e) {
          above.stuck.add(cur.name.toString('latin1'));
          // A folder left because of what is in it is counted there already.
          if (errno(e) !== 'ENOTEMPTY') failures.add(stack, cur.name, reasonOf(e), e);
        }
        continue;
      }
      const at = fdPath(cur, name);
      let entry: Stats;
      try {
        entry = lstatSync(at);
      } catch (e) {
        cur.stuck.add(name.toString('latin1'));
        if (errno(e) !== 'ENOENT') failures.add(stack, name, reasonOf(e), e);
        continue;
      }
      if (entry.isDirectory()) {
        if (entry.dev !== top!.dev) {
          cur.stuck.add(name.toString('latin1'));
          failures.add(stack, name, 'other_file_system', undefined, entry);
          continue;
        }
        try {
          stack.push(openFolder(at, name, entry));
        } catch (e) {
          cur.stuck.add(name.toString('latin1'));
          failures.add(stack, name, errno(e) === 'ECHANGED' ? 'changed' : reasonOf(e), e, entry);
          continue;
        }
        // Bounded descriptors however deep the tree: a folder far above is closed and
        // opened again, through `..`, when the walk comes back to it.
        const far = stack[stack.length - 1 - OPEN_LEVELS];
        if (far) close(far);
        continue;
      }
      const e = attempt(() => unlinkSync(at));
      if (!e) continue;
      cur.stuck.add(name.toString('latin1'));
      if (errno(e) === 'ENOENT') continue;
      failures.add(stack, name, reasonOf(e), e, entry);
      // Not writable for errand's user: no other entry of it can go either.
      if (reasonOf(e) === 'not_permitted') {
        failures.count += cur.pending.length;
        cur.pending = [];
        cur.abandoned = true;
      }
    }
  } finally {
    for (const l of stack) close(l);
  }
  if (top) {
    const e = attempt(() => rmdirSync(path));
    if (e && errno(e) !== 'ENOTEMPTY' && errno(e) !== 'ENOENT')
      failures.add([], here, reasonOf(e), e, st);
  }
  failures.check();
}

function attempt(step: () => void): unknown {
  try {
    step();
    return undefined;
  } catch (e) {
    return e;
  }
}
