/**
 * Downloads the files shared with a message, for a sender already authorized. The bot
 * token goes only to the configured file hosts, over TLS (plain HTTP on loopback only, for
 * tests), redirects included: one to any other host is not followed at all. Bodies are
 * streamed to disk and cut at a per-file and a per-message limit, never held whole in
 * memory; a file cut short is removed, not kept in part.
 */
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Attachment } from '../../domain/index.ts';
import { safeFileName, uniqueFileNames } from '../../util/file-names.ts';
import { removeEntry } from '../../util/no-follow-files.ts';

/** A file object of a Slack message event (the fields errand reads). */
export interface SharedFile {
  id: string;
  name?: string;
  url_private_download?: string;
  mimetype?: string;
  /** As Slack states it; checked before downloading, and the download is counted anyway. */
  size?: number;
}

export interface FileLimits {
  /** Largest file taken. */
  fileBytes: number;
  /** Largest total of one message's files. */
  messageBytes: number;
  /** Most files taken from one message. */
  files: number;
}

export interface DownloadOptions {
  /** Folder the files are saved in (made when the first file is saved). */
  dir: string;
  /** `host` or `host:port` values the token may be sent to. */
  hosts: readonly string[];
  token: string;
  limits: FileLimits;
}

export interface DownloadResult {
  attachments: Attachment[];
  /** One line per file not taken, saying why, for the agent and the person. */
  notAttached: string[];
}

const MAX_REDIRECTS = 3;
/** A download still running after this is a fault; Slack delivers the event again. */
const DOWNLOAD_TIMEOUT_MS = 5 * 60_000;
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/;

/** Thrown for a failure worth trying again (a network error, an HTTP error status). */
export class FileDownloadError extends Error {
  readonly code = 'file_download_failed';
}

export async function downloadSharedFiles(
  files: readonly SharedFile[],
  o: DownloadOptions,
): Promise<DownloadResult> {
  const out: DownloadResult = { attachments: [], notAttached: [] };
  const names = uniqueFileNames(files.map((f, i) => safeFileName(f.name, `file-${i + 1}`)));
  let total = 0;
  let madeDir = false;
  for (const [i, f] of files.entries()) {
    const name = names[i]!;
    const refuse = (why: string) => out.notAttached.push(`${name} (${why})`);
    if (i >= o.limits.files) {
      refuse(`errand takes ${o.limits.files} files of a message`);
      continue;
    }
    const url = parseUrl(f.url_private_download);
    if (!url || !mayCarryToken(url, o.hosts)) {
      refuse('not offered by a Slack file host');
      continue;
    }
    const left = o.limits.messageBytes - total;
    const cap = Math.min(o.limits.fileBytes, left);
    const capWhy =
      cap === o.limits.fileBytes
        ? `over the ${mb(o.limits.fileBytes)} MB limit of a file`
        : `over the ${mb(o.limits.messageBytes)} MB limit of a message's files`;
    if (f.size !== undefined && f.size > cap) {
      refuse(capWhy);
      continue;
    }
    if (!madeDir) {
      await mkdir(o.dir, { recursive: true, mode: 0o700 });
      madeDir = true;
    }
    const path = join(o.dir, name);
    const r = await fetchToFile(url, path, cap, o);
    if (r.kind === 'too_large') refuse(capWhy);
    else if (r.kind === 'redirected')
      refuse(`Slack sent it to ${r.host}, which is not a Slack file host`);
    else {
      total += r.size;
      out.attachments.push({ name, path, size: r.size, contentType: f.mimetype });
    }
  }
  return out;
}

type Fetched =
  | { kind: 'saved'; size: number }
  | { kind: 'too_large' }
  | { kind: 'redirected'; host: string };

async function fetchToFile(
  first: URL,
  path: string,
  cap: number,
  o: DownloadOptions,
): Promise<Fetched> {
  const controller = new AbortController();
  const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS)]);
  let url = first;
  try {
    for (let hop = 0; ; hop++) {
      let res: Response;
      try {
        res = await fetch(url, {
          headers: { authorization: `Bearer ${o.token}` },
          // Followed here, host by host: fetch would carry the token to wherever it points.
          redirect: 'manual',
          signal,
        });
      } catch (e) {
        throw new FileDownloadError(`downloading a shared file failed: ${(e as Error).message}`);
      }
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel();
        const next = parseUrl(location, url);
        if (!next || !mayCarryToken(next, o.hosts))
          return { kind: 'redirected', host: next?.host ?? 'an unreadable address' };
        if (hop >= MAX_REDIRECTS) throw new FileDownloadError('a shared file redirected too often');
        url = next;
        continue;
      }
      if (!res.ok || !res.body) {
        await res.body?.cancel();
        throw new FileDownloadError(`downloading a shared file failed: HTTP ${res.status}`);
      }
      const length = Number(res.headers.get('content-length') ?? Number.NaN);
      if (length > cap) {
        await res.body.cancel();
        return { kind: 'too_large' };
      }
      return await streamToFile(res.body, path, cap);
    }
  } finally {
    // Whatever is still open (a body cut at the limit) is closed, with its connection.
    controller.abort();
  }
}

async function streamToFile(
  body: ReadableStream<Uint8Array>,
  path: string,
  cap: number,
): Promise<Fetched> {
  // A file left by an earlier delivery of the same event is replaced, never written through.
  await removeEntry(path);
  const handle = await open(path, 'wx', 0o600);
  let size = 0;
  let complete = false;
  try {
    for await (const chunk of body) {
      size += chunk.byteLength;
      if (size > cap) return { kind: 'too_large' };
      await handle.write(chunk);
    }
    complete = true;
    return { kind: 'saved', size };
  } catch (e) {
    throw new FileDownloadError(`downloading a shared file failed: ${(e as Error).message}`);
  } finally {
    await handle.close();
    if (!complete) await removeEntry(path);
  }
}

function mayCarryToken(url: URL, hosts: readonly string[]): boolean {
  if (!hosts.includes(url.host)) return false;
  return url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.test(url.host));
}

function parseUrl(value: string | undefined, base?: URL): URL | undefined {
  if (!value) return undefined;
  try {
    return new URL(value, base);
  } catch {
    return undefined;
  }
}

function mb(bytes: number): string {
  return String(Number((bytes / 1024 / 1024).toPrecision(3)));
}
