import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { ErrandError } from '../util/errors.ts';
import { git } from './git.ts';

interface Entry {
  mode: string;
  type: string;
  sha: string;
}

/**
 * Reads files of one git ref (a repository's default branch) straight from the object
 * store, never from a work tree: what the agent changed in its checkout is invisible here.
 */
export class TrustedTree {
  readonly #gitDir: string;
  readonly #ref: string;
  readonly #label: string;

  /** `label` names the repository in errors. */
  constructor(gitDir: string, ref: string, label: string) {
    this.#gitDir = gitDir;
    this.#ref = ref;
    this.#label = label;
  }

  #git(args: string[], step: string) {
    return git(['-C', this.#gitDir, ...args], { step, repoId: this.#label });
  }

  async #entry(path: string): Promise<Entry | undefined> {
    const clean = posix.normalize(path).replace(/\/+$/, '');
    if (clean.startsWith('..') || posix.isAbsolute(clean))
      throw new ErrandError('usage', `invalid repository path ${path}`);
    const r = await this.#git(['ls-tree', '-z', this.#ref, '--', clean], 'ls-tree');
    const line = r.stdout.toString().split('\0')[0];
    const m = line ? /^(\d+) (\w+) ([0-9a-f]+)\t/.exec(line) : null;
    return m ? { mode: m[1]!, type: m[2]!, sha: m[3]! } : undefined;
  }

  /** A file's content, or undefined when it does not exist at the ref. */
  async readFile(path: string): Promise<Buffer | undefined> {
    const entry = await this.#entry(path);
    if (entry?.type !== 'blob') return undefined;
    return (await this.#git(['cat-file', 'blob', entry.sha], 'cat-file')).stdout;
  }

  /** A folder's git tree id (changes exactly when its content does), or undefined. */
  async treeId(dir: string): Promise<string | undefined> {
    const entry = await this.#entry(dir);
    return entry?.type === 'tree' ? entry.sha : undefined;
  }

  /**
   * Writes a folder to `destDir` (a build context). Returns false when it is absent.
   * Symlinks must stay inside the folder; submodules are refused.
   */
  async extractDir(dir: string, destDir: string): Promise<boolean> {
    const tree = await this.treeId(dir);
    if (!tree) return false;
    const listing = await this.#git(['ls-tree', '-r', '-z', tree], 'ls-tree');
    mkdirSync(destDir, { recursive: true });
    for (const line of listing.stdout.toString().split('\0').filter(Boolean)) {
      const m = /^(\d+) (\w+) ([0-9a-f]+)\t(.+)$/s.exec(line);
      if (!m) continue;
      const [, mode, type, sha, rel] = m as unknown as [string, string, string, string, string];
      const where = `${dir}/${rel}`;
      if (type !== 'blob')
        throw new ErrandError(
          'trusted_file_invalid',
          `${where}: submodules are not allowed in ${dir}`,
        );
      const target = join(destDir, rel);
      mkdirSync(join(target, '..'), { recursive: true });
      const content = (await this.#git(['cat-file', 'blob', sha], 'cat-file')).stdout;
      if (mode === '120000') {
        const link = content.toString();
        if (
          posix.isAbsolute(link) ||
          posix.normalize(posix.join(posix.dirname(rel), link)).startsWith('..')
        ) {
          throw new ErrandError(
            'trusted_file_invalid',
            `${where}: a symlink pointing outside ${dir} is not allowed`,
          );
        }
        symlinkSync(link, target);
        continue;
      }
      writeFileSync(target, content, { mode: mode === '100755' ? 0o755 : 0o644 });
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
