import { mkdir, opendir } from 'node:fs/promises';
import { join } from 'node:path';
import { safeFileName, uniqueFileNames } from '../util/file-names.ts';
import {
  type FileRefusal,
  openRegularFile,
  readAtMost,
  removeEntry,
  unlinkUnlessFolder,
  writeNewFile,
} from '../util/no-follow-files.ts';

/** The largest file sent back with a reply. */
export const OUTBOX_FILE_LIMIT_BYTES = 25 * 1024 * 1024;
/** The most sent back with one reply, all files together. */
export const OUTBOX_TOTAL_LIMIT_BYTES = 100 * 1024 * 1024;
/**
 * The most outbox entries looked at for one reply; the reply says when there were more,
 * which are removed unread with the rest of the outbox. Each entry taken is an attachment
 * (a Slack upload, a mail part) and each one skipped a line of the reply: an outbox of a
 * million empty files must become neither.
 */
export const OUTBOX_ENTRY_LIMIT = 100;

export interface OutboxLimits {
  /** Largest single file taken; a larger one is skipped. */
  fileBytes: number;
  /** Most bytes taken in all; a file that would pass it is skipped. */
  totalBytes: number;
  /** Most entries looked at; the others are left for `clearOutbox`. */
  entries: number;
}

export const OUTBOX_LIMITS: OutboxLimits = {
  fileBytes: OUTBOX_FILE_LIMIT_BYTES,
  totalBytes: OUTBOX_TOTAL_LIMIT_BYTES,
  entries: OUTBOX_ENTRY_LIMIT,
};

/** A file taken from the outbox: its copy, in a folder no sandbox mounts. */
export interface TakenFile {
  /** The sanitized name, also the copy's. */
  name: string;
  /** The copy's host path. */
  path: string;
  size: number;
}

/** An outbox entry that was not taken, and why, in words for the thread. */
export interface SkippedFile {
  name: string;
  reason: string;
}

export interface TakenOutbox {
  files: TakenFile[];
  skipped: SkippedFile[];
  /** There were more entries than the entry limit; those were not looked at. */
  more: boolean;
}

const MB = 1024 * 1024;

const REASONS: Record<FileRefusal, string> = {
  symbolic_link: 'it is a symbolic link; only regular files are sent',
  folder: 'it is a folder; only files at the top of the outbox are sent',
  not_regular_file: 'not a regular file',
  missing: 'it was gone before it could be read',
  unreadable: 'it could not be read',
};

/**
 * Takes what the agent left in its outbox: each regular file at the top of `outbox` is
 * copied, from a descriptor opened without following links, into `destDir` (created 0700
 * when there is something to copy; it must be a folder no sandbox mounts). Every entry
 * but folders is then unlinked, so no later reply sends it again. Links, FIFOs, sockets,
 * devices, folders and files over the limits are skipped and named with the reason.
 * Folders stay: the sandbox may still be exiting, and removing a tree its processes can
 * change could be steered onto the host; `clearOutbox` removes them once it is gone.
 *
 * Names are read and opened as bytes (a name that is not UTF-8 is still found) and
 * sanitized for the copy and the reply. Only the first `limits.entries` entries listed are
 * looked at (`more` says there were others; `clearOutbox` removes them). Nothing there:
 * nothing taken.
 */
export async function takeOutbox(
  outbox: string,
  destDir: string,
  limits: OutboxLimits = OUTBOX_LIMITS,
): Promise<TakenOutbox> {
  const entries: Buffer[] = [];
  let more = false;
  // Streamed and cut short, so a folder of millions of names (one a sandbox process may
  // still be adding to) is neither held in memory nor listed without end.
  for await (const raw of entriesOf(outbox)) {
    if (entries.length === limits.entries) {
      more = true;
      break;
    }
    entries.push(raw);
  }
  entries.sort(Buffer.compare);
  const names = uniqueFileNames(
    entries.map((raw, i) => safeFileName(raw.toString('utf8'), `file-${i + 1}`)),
  );
  const files: TakenFile[] = [];
  const skipped: SkippedFile[] = [];
  let total = 0;
  for (const [i, raw] of entries.entries()) {
    const name = names[i]!;
    const path = inFolder(outbox, raw);
    const opened = await openRegularFile(path);
    if (!opened.ok) {
      skipped.push({ name, reason: REASONS[opened.refused] });
      await unlinkUnlessFolder(path);
      continue;
    }
    try {
      const budget = Math.min(limits.fileBytes, limits.totalBytes - total);
      // Counted as read, not from fstat alone: a sandbox process may still be appending.
      const content =
        opened.stats.size > budget ? undefined : await readAtMost(opened.handle, budget);
      if (!content) {
        skipped.push({ name, reason: overLimit(budget, limits) });
        continue;
      }
      await mkdir(destDir, { recursive: true, mode: 0o700 });
      const copy = join(destDir, name);
      await writeNewFile(copy, content);
      total += content.length;
      files.push({ name, path: copy, size: content.length });
    } finally {
      await opened.handle.close();
      await unlinkUnlessFolder(path);
    }
  }
  return { files, skipped, more };
}

/**
 * Removes everything in the outbox, folders with their contents, without following links.
 * Only once no sandbox process can change it (the task's sandbox is gone, the next not
 * started).
 */
export async function clearOutbox(outbox: string): Promise<void> {
  for await (const raw of entriesOf(outbox)) await removeEntry(inFolder(outbox, raw));
}

/** The reply's last lines, naming the files not sent; empty when none. */
export function describeSkipped(
  taken: Pick<TakenOutbox, 'skipped' | 'more'>,
  limits: OutboxLimits = OUTBOX_LIMITS,
): string {
  const lines = taken.skipped.map((s) => `${s.name} was not attached: ${s.reason}.`);
  if (taken.more)
    lines.push(
      `The other entries of the outbox were not attached: only ${limits.entries} are looked at for one reply; put an archive there.`,
    );
  return lines.join('\n');
}

/** The names in a folder, one at a time, as bytes; none when it does not exist. */
async function* entriesOf(folder: string): AsyncGenerator<Buffer> {
  let dir: Awaited<ReturnType<typeof opendir>>;
  try {
    // latin1 maps each byte to one character: the name's bytes, whatever they are.
    dir = await opendir(folder, { encoding: 'latin1' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  for await (const entry of dir) yield Buffer.from(entry.name, 'latin1');
}

function inFolder(folder: string, name: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${folder}/`), name]);
}

function overLimit(budget: number, limits: OutboxLimits): string {
  return budget === limits.fileBytes
    ? `over the ${limits.fileBytes / MB} MB limit for one file`
    : `over the ${limits.totalBytes / MB} MB limit for all files of one reply`;
}
