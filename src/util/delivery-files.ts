import { basename } from 'node:path';
import { readRegularFile } from './no-follow-files.ts';

/** A reply's files, read for a channel to attach, and what could not be. */
export interface AttachableFiles {
  files: Array<{ name: string; content: Buffer }>;
  /** One entry per file left out: its name and why, e.g. `a.txt, no longer on disk`. */
  notAttached: string[];
}

/**
 * Reads the files of a delivery (errand's own copies, see docs/sandbox.md) for a channel
 * to attach. Each is read without following a link at its name: a path in the store that
 * has become a link, a FIFO or a folder is left out and named, never opened through.
 * `limit`: the most all files together may have (e.g. a mail's size limit), with the
 * words that name it; absent: no limit.
 */
export async function readDeliveryFiles(
  paths: string[],
  limit?: { bytes: number; label: string },
): Promise<AttachableFiles> {
  const files: AttachableFiles['files'] = [];
  const notAttached: string[] = [];
  let left = limit?.bytes ?? Number.MAX_SAFE_INTEGER;
  for (const path of paths) {
    const name = basename(path);
    const read = await readRegularFile(path, left);
    if (read.ok) {
      files.push({ name, content: read.content });
      left -= read.content.length;
      continue;
    }
    notAttached.push(
      `${name}, ${
        read.refused === 'missing'
          ? 'no longer on disk'
          : read.refused === 'too_large'
            ? `over the ${limit?.label}`
            : 'not a regular file'
      }`,
    );
  }
  return { files, notAttached };
}
