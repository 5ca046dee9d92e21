import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { ErrandError } from '../util/errors.ts';
import { git } from './git.ts';

interface Entry {
  mode: string;
  type: string;
  sha: string;
  path: string;
}

const SYMLINK = '120000';
const EXECUTABLE = '100755';
// Enough for any honest chain of links; a loop ends here instead of spinning.
const MAX_LINK_HOPS = 40;

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
    const m = /^(\d+) (\w+) ([0-9a-f]+)\t(.+)$/s.exec(line);
    if (m) out.push({ mode: m[1]!, type: m[2]!, sha: m[3]!, path: m[4]! });
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
 * Reads files of one git ref (a repository's default branch) straight from the object
 * store, never from a work tree: what the agent changed in its checkout is invisible here.
 * Paths are repository-relative (`.errand/sandbox.yaml`); `..` and absolute paths are a
 * `usage` error.
 */
export class TrustedTree {
  readonly #gitDir: string;
  readonly #ref: string;
  readonly #label: string;

  /** `ref` is a full ref (`refs/heads/main`); `label` names the repository in errors. */
  constructor(gitDir: string, ref: string, label: string) {
    this.#gitDir = gitDir;
    this.#ref = ref;
    this.#label = label;
  }

  #git(args: string[], step: string) {
    return git(['-C', this.#gitDir, ...args], { step, repoId: this.#label });
  }

  async #entry(clean: string): Promise<Entry | undefined> {
    const r = await this.#git(['ls-tree', '-z', this.#ref, '--', clean], 'ls-tree');
    return parseEntries(r.stdout).find((e) => e.path === clean);
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
    return (await this.#git(['cat-file', 'blob', entry.sha], 'cat-file')).stdout;
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
   * Writes a folder to `destDir` (a build context; created if needed, existing files are
   * never overwritten). Returns false when the folder is absent. Symlinks must resolve
   * inside the folder; submodules are refused (`trusted_file_invalid`, naming the path).
   */
  async extractDir(dir: string, destDir: string): Promise<boolean> {
    const tree = await this.treeId(dir);
    if (!tree) return false;
    const clean = cleanPath(dir);
    const listing = await this.#git(['ls-tree', '-r', '-z', tree], 'ls-tree');
    const entries = parseEntries(listing.stdout);
    const links = new Map<string, string>();
    for (const e of entries) {
      const where = `${clean}/${e.path}`;
      // git refuses such names, but a crafted tree object may still carry them.
      if (e.path.split('/').some((p) => p === '' || p === '.' || p === '..' || p === '.git'))
        throw invalid(`${where}: this path is not allowed in ${clean}.`);
      if (e.type !== 'blob') throw invalid(`${where}: submodules are not allowed in ${clean}.`);
      if (e.mode === SYMLINK) {
        const target = (await this.#git(['cat-file', 'blob', e.sha], 'cat-file')).stdout;
        links.set(e.path, target.toString('utf8'));
      }
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
      const content = (await this.#git(['cat-file', 'blob', e.sha], 'cat-file')).stdout;
      writeFileSync(target, content, { mode: e.mode === EXECUTABLE ? 0o755 : 0o644, flag: 'wx' });
    }
    return true;
  }
}

/**
 * The default branch of a checkout (for `errand sandbox run` in CI): origin's HEAD when
 * known, else a local main or master. Undefined outside a git checkout.
 */
export async function checkoutDefaultRef(
  cwd: string,
): Promise<{ gitDir: string; ref: string } | undefined> {
  const top = await git(['-C', cwd, 'rev-parse', '--show-toplevel'], {
    step: 'rev-parse',
    repoId: cwd,
  }).catch(() => undefined);
  if (!top) return undefined;
  const dir = top.stdout.toString().trim();
  const tryRef = async (ref: string) =>
    (await git(['-C', dir, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`], {
      step: 'rev-parse',
      repoId: dir,
    }).then(
      () => true,
      () => false,
    ))
      ? ref
      : undefined;
  const originHead = await git(['-C', dir, 'symbolic-ref', '--quiet', 'refs/remotes/origin/HEAD'], {
    step: 'symbolic-ref',
    repoId: dir,
  }).catch(() => undefined);
  const candidates = [
    originHead?.stdout.toString().trim(),
    'refs/heads/main',
    'refs/heads/master',
  ].filter((x): x is string => !!x);
  for (const c of candidates) {
    const ref = await tryRef(c);
    if (ref) return { gitDir: dir, ref };
  }
  return undefined;
}
