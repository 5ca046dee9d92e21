import { createHash } from 'node:crypto';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { ErrandError } from '../util/errors.ts';
import { git } from './git.ts';

interface Entry {
  mode: string;
  type: string;
  sha: string;
  /** A blob's size in bytes, as the listing tells it; undefined for a folder or submodule. */
  size: number | undefined;
  path: string;
}

const SYMLINK = '120000';
const EXECUTABLE = '100755';
// Enough for any honest chain of links; a loop ends here instead of spinning.
const MAX_LINK_HOPS = 40;
// A hostile default branch may hold a huge file or a folder of a million entries: each is
// refused from its listing, before it is read, so errand never holds it whole.
/** A trusted file read whole: small YAML files, whose parser allows no more (YAML_LIMITS). */
export const MAX_TRUSTED_FILE_BYTES = 1024 * 1024;
/** Entries (files, links and folders) of an extracted folder: a build context has a few. */
export const MAX_TRUSTED_DIR_ENTRIES = 1000;
/** Bytes of all files of an extracted folder together. */
export const MAX_TRUSTED_DIR_BYTES = 100 * 1024 * 1024;
/** One folder's listing: tens of thousands of entries, more than any honest folder has. */
const MAX_LISTING_BYTES = 16 * 1024 * 1024;
const MIB = 1024 * 1024;
/** A full object id: SHA-1 (40 hex digits) or SHA-256 (64). Nothing shorter names one object. */
export const FULL_OBJECT_ID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

function invalid(message: string): ErrandError {
  return new ErrandError('trusted_file_invalid', message);
}

/** A repository-relative path with no `..`, no leading `/` and not the root itself. */
function cleanPath(path: string): string {
  const clean = posix.normalize(path).replace(/\/+$/, '');
  if (
    path.includes('\0') ||
    posix.isAbsolute(path) ||
    path.split('/').includes('..') ||
    clean === '' ||
    clean === '.'
  )
    throw new ErrandError('usage', `invalid repository path ${JSON.stringify(path.slice(0, 200))}`);
  return clean;
}

function parseEntries(listing: Buffer): Entry[] {
  const out: Entry[] = [];
  for (const line of listing.toString('utf8').split('\0')) {
    // `ls-tree --long`: the size is padded with spaces, `-` for a folder or submodule.
    const m = /^(\d+) (\w+) ([0-9a-f]+) +(\d+|-)\t(.+)$/s.exec(line);
    if (m)
      out.push({
        mode: m[1]!,
        type: m[2]!,
        sha: m[3]!,
        size: m[4] === '-' ? undefined : Number(m[4]),
        path: m[5]!,
      });
  }
  return out;
}

/**
 * Whether the link at `from` (folder-relative) with `target` resolves outside the folder,
 * following the folder's other links. A lexical check alone is not enough: with
 * `sub/up -> ..`, the link `x -> sub/up/..` looks like `sub` but lands above the folder.
 */
function escapes(links: Map<string, string>, from: string, target: string): boolean {
  const at = from.split('/').slice(0, -1);
  let pending = target.split('/');
  let hops = 0;
  if (posix.isAbsolute(target)) return true;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (at.length === 0) return true;
      at.pop();
      continue;
    }
    const next = links.get([...at, part].join('/'));
    if (next === undefined) {
      at.push(part);
      continue;
    }
    if (++hops > MAX_LINK_HOPS || posix.isAbsolute(next)) return true;
    pending = [...next.split('/'), ...pending];
  }
  return false;
}

/**
 * Reads files of one commit (a repository's default branch, as it was when a task began)
 * straight from the object store, never from a work tree: what the agent changed in its
 * checkout is invisible here, and a branch moving on meanwhile changes nothing.
 *
 * Every object read is checked against its id, from the commit down: git itself checks a
 * commit and the tree it is given, not the subtrees and blobs below, so a writable object
 * store (a checkout a sandboxed step wrote to) could otherwise answer the right id with
 * other content. A mismatch is `trusted_file_invalid`. Paths are repository-relative
 * (`.errand/sandbox.yaml`); `..` and absolute paths are a `usage` error.
 */
export class TrustedTree {
  readonly #gitDir: string;
  readonly #commit: string;
  readonly #label: string;
  /** Tree listings by id: an id's content never changes, so they are kept. */
  readonly #trees = new Map<string, Promise<Entry[]>>();

  /**
   * `commit` is a full commit id (see FULL_OBJECT_ID); `label` names the repository in
   * errors. `gitDir` is a git folder or a work tree's top.
   */
  constructor(gitDir: string, commit: string, label: string) {
    if (!FULL_OBJECT_ID.test(commit))
      throw new ErrandError(
        'usage',
        `not a full commit id: ${JSON.stringify(commit.slice(0, 80))}`,
      );
    this.#gitDir = gitDir;
    this.#commit = commit;
    this.#label = label;
  }

  /** The commit this tree reads. */
  get commit(): string {
    return this.#commit;
  }

  #git(args: string[], step: string, maxOutput?: { bytes: number; error: () => Error }) {
    return git(['-C', this.#gitDir, ...args], {
      step,
      repoId: this.#label,
      offline: true,
      maxOutput,
    });
  }

  /**
   * One level of a tree (or of a commit's root tree), with each blob's size; git checks
   * the object it is named. `where` names the folder in errors.
   */
  #list(treeish: string, where: string): Promise<Entry[]> {
    let listed = this.#trees.get(treeish);
    if (!listed) {
      listed = this.#git(['ls-tree', '-z', '--long', '--full-tree', treeish], 'ls-tree', {
        bytes: MAX_LISTING_BYTES,
        error: () =>
          invalid(
            `${where}: its listing passes ${MAX_LISTING_BYTES / MIB} MiB, more entries than errand reads in one folder.`,
          ),
      }).then((r) => parseEntries(r.stdout));
      // A failed read is not kept: the next one says why again.
      listed.catch(() => this.#trees.delete(treeish));
      this.#trees.set(treeish, listed);
    }
    return listed;
  }

  /** A blob's content, checked against its id; no more than the `size` its listing told. */
  async #blob(sha: string, where: string, size: number | undefined): Promise<Buffer> {
    const tampered = () =>
      invalid(
        `${where}: object ${sha} of repository ${this.#label} does not match its content; the object store is damaged or was tampered with.`,
      );
    const content = (
      await this.#git(
        ['cat-file', 'blob', sha],
        'cat-file',
        // The same limit holds stderr: room for git's warnings.
        size === undefined ? undefined : { bytes: size + 64 * 1024, error: tampered },
      )
    ).stdout;
    const id = createHash(sha.length === 40 ? 'sha1' : 'sha256')
      .update(`blob ${content.length}\0`)
      .update(content)
      .digest('hex');
    if (id !== sha) throw tampered();
    return content;
  }

  /** The entry at a path, walking one checked tree per folder. */
  async #entry(clean: string): Promise<Entry | undefined> {
    const parts = clean.split('/');
    let tree = this.#commit;
    for (const [i, part] of parts.entries()) {
      const where = i === 0 ? 'the top folder' : parts.slice(0, i).join('/');
      const entry = (await this.#list(tree, where)).find((e) => e.path === part);
      if (!entry) return undefined;
      if (i === parts.length - 1) return { ...entry, path: clean };
      if (entry.type !== 'tree') return undefined;
      tree = entry.sha;
    }
    return undefined;
  }

  /**
   * A file's content, or undefined when nothing exists at that path. A folder, a symlink
   * or a submodule there is `trusted_file_invalid`: a link could make the file's content
   * come from anywhere in the repository.
   */
  async readFile(path: string): Promise<Buffer | undefined> {
    const clean = cleanPath(path);
    const entry = await this.#entry(clean);
    if (!entry) return undefined;
    if (entry.type !== 'blob') throw invalid(`${clean} must be a file, but it is a ${entry.type}.`);
    if (entry.mode === SYMLINK) throw invalid(`${clean} must be a file, not a symlink.`);
    if (entry.size !== undefined && entry.size > MAX_TRUSTED_FILE_BYTES)
      throw invalid(
        `${clean} is ${entry.size} bytes, more than the ${MAX_TRUSTED_FILE_BYTES / MIB} MiB (${MAX_TRUSTED_FILE_BYTES} bytes) errand reads of a trusted file; make it smaller.`,
      );
    return await this.#blob(entry.sha, clean, entry.size);
  }

  /**
   * A folder's git tree id (changes exactly when its content, names or modes do), or
   * undefined when nothing exists at that path. Something other than a folder there is
   * `trusted_file_invalid`.
   */
  async treeId(dir: string): Promise<string | undefined> {
    const clean = cleanPath(dir);
    const entry = await this.#entry(clean);
    if (!entry) return undefined;
    if (entry.type !== 'tree') throw invalid(`${clean} must be a folder.`);
    return entry.sha;
  }

  /**
   * Every entry below a tree, paths relative to it; each subtree is listed (and checked)
   * by its id. `seen` counts entries and bytes of the whole walk: past either limit it
   * stops, before any blob is read.
   */
  async #walk(
    tree: string,
    prefix: string,
    where: string,
    seen = { entries: 0, bytes: 0 },
  ): Promise<Entry[]> {
    const out: Entry[] = [];
    const listing = await this.#list(tree, prefix ? `${where}/${prefix}` : where);
    seen.entries += listing.length;
    for (const e of listing) seen.bytes += e.size ?? 0;
    if (seen.entries > MAX_TRUSTED_DIR_ENTRIES)
      throw invalid(
        `${where} has more than ${MAX_TRUSTED_DIR_ENTRIES} entries (files, links and folders), more than errand extracts; keep only what the build needs there.`,
      );
    if (seen.bytes > MAX_TRUSTED_DIR_BYTES)
      throw invalid(
        `${where} holds more than ${MAX_TRUSTED_DIR_BYTES / MIB} MiB of files, more than errand extracts; keep only what the build needs there.`,
      );
    for (const e of listing) {
      const path = prefix ? `${prefix}/${e.path}` : e.path;
      // git refuses such names, but a crafted tree object may still carry them.
      if (['', '.', '..', '.git'].includes(e.path) || e.path.includes('/'))
        throw invalid(`${where}/${path}: this path is not allowed in ${where}.`);
      if (e.type === 'tree') out.push(...(await this.#walk(e.sha, path, where, seen)));
      else if (e.type !== 'blob')
        throw invalid(`${where}/${path}: submodules are not allowed in ${where}.`);
      else out.push({ ...e, path });
    }
    return out;
  }

  /**
   * Writes a folder to `destDir` (a build context; created if needed, existing files are
   * never overwritten). Returns false when the folder is absent. Symlinks must resolve
   * inside the folder; submodules are refused (`trusted_file_invalid`, naming the path).
   */
  async extractDir(dir: string, destDir: string): Promise<boolean> {
    const tree = await this.treeId(dir);
    if (!tree) return false;
    const clean = cleanPath(dir);
    const entries = await this.#walk(tree, '', clean);
    const links = new Map<string, string>();
    for (const e of entries) {
      if (e.mode === SYMLINK)
        links.set(e.path, (await this.#blob(e.sha, `${clean}/${e.path}`, e.size)).toString('utf8'));
    }
    for (const [path, target] of links) {
      if (escapes(links, path, target))
        throw invalid(`${clean}/${path}: a symlink pointing outside ${clean} is not allowed.`);
    }
    mkdirSync(destDir, { recursive: true });
    for (const e of entries) {
      const target = join(destDir, e.path);
      mkdirSync(join(target, '..'), { recursive: true });
      const link = links.get(e.path);
      if (link !== undefined) {
        symlinkSync(link, target);
        continue;
      }
      const content = await this.#blob(e.sha, `${clean}/${e.path}`, e.size);
      writeFileSync(target, content, { mode: e.mode === EXECUTABLE ? 0o755 : 0o644, flag: 'wx' });
    }
    return true;
  }
}
