/**
 * Host-side reads and writes of files that a sandbox wrote, or that sit in a folder a
 * sandbox can see. None of them follows a symbolic link at the file's own name: a link the
 * agent planted at `/outbox/report.pdf → /proc/self/environ` (resolved on the host, so
 * errand's own environment) or at an inbox name is refused, never opened through. Paths
 * of the folders above the file are errand's own and trusted.
 */
import { constants, type Stats } from 'node:fs';
import { type FileHandle, open, realpath, unlink } from 'node:fs/promises';
import { sep } from 'node:path';
import { removeTree } from './remove-tree.ts';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants;

/** Why a file was not opened; each is an expected outcome, not a fault. */
export type FileRefusal =
  | 'missing'
  | 'symbolic_link'
  | 'folder'
  | 'not_regular_file'
  | 'unreadable';

/** An open regular file, or why it was refused. The caller closes `handle`. */
export type OpenedFile =
  | { ok: true; handle: FileHandle; stats: Stats }
  | { ok: false; refused: FileRefusal; detail?: string };

/**
 * Opens `path` for reading without following a link at its name, and only if it is a
 * regular file. O_NONBLOCK: opening a FIFO does not wait for a writer that never comes
 * (nothing is read from it: it is refused once open).
 */
export async function openRegularFile(path: string | Buffer): Promise<OpenedFile> {
  let handle: FileHandle;
  try {
    handle = await open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { ok: false, refused: 'missing' };
    // ELOOP: a link at the name. ENXIO: a socket (or a device without its driver).
    if (code === 'ELOOP') return { ok: false, refused: 'symbolic_link' };
    if (code === 'ENXIO') return { ok: false, refused: 'not_regular_file' };
    return { ok: false, refused: 'unreadable', detail: code ?? String(e) };
  }
  const stats = await handle.stat().catch(async (e: unknown) => {
    await handle.close();
    throw e;
  });
  if (!stats.isFile()) {
    await handle.close();
    return { ok: false, refused: stats.isDirectory() ? 'folder' : 'not_regular_file' };
  }
  return { ok: true, handle, stats };
}

/**
 * Reads an open file to its end, or stops past `maxBytes` and returns undefined. The size
 * is counted as read, not taken from fstat: a sandbox process may still be appending.
 */
export async function readAtMost(
  handle: FileHandle,
  maxBytes: number,
): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const chunk = Buffer.allocUnsafe(Math.min(1024 * 1024, maxBytes - total + 1));
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
    if (bytesRead === 0) return Buffer.concat(chunks, total);
    total += bytesRead;
    if (total > maxBytes) return undefined;
    chunks.push(bytesRead === chunk.length ? chunk : chunk.subarray(0, bytesRead));
  }
}

/**
 * Reads a regular file of at most `maxBytes` without following a link at its name.
 * `too_large` when it is larger.
 */
export async function readRegularFile(
  path: string | Buffer,
  maxBytes: number,
): Promise<{ ok: true; content: Buffer } | { ok: false; refused: FileRefusal | 'too_large' }> {
  const opened = await openRegularFile(path);
  if (!opened.ok) return opened;
  try {
    const content = await readAtMost(opened.handle, maxBytes);
    return content ? { ok: true, content } : { ok: false, refused: 'too_large' };
  } finally {
    await opened.handle.close();
  }
}

/**
 * Removes whatever entry has this name, without following it: a link is removed, not its
 * target; a folder with everything in it, as removeTree does (folders the agent locked
 * included). Only for folders no sandbox process can change meanwhile. Nothing there:
 * nothing to do.
 */
export async function removeEntry(path: string | Buffer): Promise<void> {
  await removeTree(path);
}

/**
 * Unlinks the entry with this name unless it is a folder; a link is removed, not its
 * target. Never descends: safe while a sandbox process may still change the folder.
 */
export async function unlinkUnlessFolder(path: string | Buffer): Promise<void> {
  try {
    await unlink(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'EISDIR') throw e;
  }
}

/**
 * Writes a new file at `path`, replacing whatever entry had that name (removed without
 * following it), and creates it exclusively without following links: a link planted at
 * the name cannot redirect the write. A link planted again between the two steps makes
 * the create fail (EEXIST) rather than write through it.
 */
export async function writeNewFile(
  path: string,
  content: Uint8Array,
  mode: number = 0o600,
): Promise<void> {
  await removeEntry(path);
  const handle = await open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
  try {
    await handle.writeFile(content);
  } finally {
    await handle.close();
  }
}

/**
 * Opens a regular file, as openRegularFile does, only if its real path (every link above
 * it resolved) lies inside `folder`; undefined otherwise, or when it cannot be opened.
 * For paths read back from the store, which must name errand's own copies.
 */
export async function openFileInside(
  folder: string,
  path: string,
): Promise<{ handle: FileHandle; stats: Stats } | undefined> {
  const [real, root] = await Promise.all([
    realpath(path).catch(() => undefined),
    realpath(folder).catch(() => undefined),
  ]);
  if (!real || !root || !real.startsWith(`${root}${sep}`)) return undefined;
  const opened = await openRegularFile(path);
  return opened.ok ? opened : undefined;
}
