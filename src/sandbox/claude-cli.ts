import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { chmod, copyFile, link, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ErrandError } from '../util/errors.ts';
import { ownedName, removeLeftBehind } from '../util/owned-names.ts';

/** The Claude Code version errand runs unless a repository pins another. */
export const DEFAULT_CLAUDE_CODE_VERSION = '2.1.330';

const run = promisify(execFile);
const installing = new Map<string, Promise<string>>();

// The CLI runs inside the container, so it is the Linux build for this machine's CPU. The
// glibc build runs on Debian, Ubuntu and Fedora images; Alpine images need the musl one.
function platformPackage(): string {
  const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
  return `@anthropic-ai/claude-code-linux-${arch}`;
}

/**
 * The path of the Claude Code binary of `version`, installed from the npm registry into
 * errand's cache on first use. It is mounted read-only into sandboxes, never baked into
 * a repository's image.
 */
export function ensureClaudeCli(
  cacheDir: string,
  version: string = DEFAULT_CLAUDE_CODE_VERSION,
): Promise<string> {
  if (!validVersion(version)) return Promise.reject(invalidVersion(version));
  const existing = installing.get(version);
  if (existing) return existing;
  const p = install(cacheDir, version).finally(() => installing.delete(version));
  installing.set(version, p);
  return p;
}

function validVersion(version: string): boolean {
  return /^\d+\.\d+\.\d+$/.test(version);
}

function invalidVersion(version: string): ErrandError {
  return new ErrandError('sandbox_setup', `invalid Claude Code version ${version}`);
}

const TEMP_PREFIX = '.tmp-';

/**
 * The binary of `version` where sandboxes mount it from: one copy per version in
 * `<sandboxDir>/tools/`, since a container's mount table shows the host path of each
 * mount and errand's cache is not the sandbox's to know. A hardlink of the cached binary
 * when both are on one file system, else a copy; made aside and renamed into place.
 */
export async function sandboxClaudeCli(
  cacheDir: string,
  sandboxDir: string,
  version: string = DEFAULT_CLAUDE_CODE_VERSION,
): Promise<string> {
  if (!validVersion(version)) throw invalidVersion(version);
  const dir = join(sandboxDir, 'tools');
  const target = join(dir, `claude-${version}`);
  if (existsSync(target)) return target;
  const cached = await ensureClaudeCli(cacheDir, version);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Copies a crashed errand left half made.
  removeLeftBehind(dir, TEMP_PREFIX);
  const temp = join(dir, ownedName(TEMP_PREFIX));
  try {
    try {
      await link(cached, temp);
    } catch {
      // Another file system (EXDEV), or links not allowed here.
      await copyFile(cached, temp);
      await chmod(temp, 0o555);
    }
    await rename(temp, target);
  } finally {
    await rm(temp, { force: true });
  }
  return target;
}

async function install(cacheDir: string, version: string): Promise<string> {
  const dir = join(cacheDir, 'claude-code', version);
  const bin = join(dir, 'node_modules', ...platformPackage().split('/'), 'claude');
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  try {
    await run(
      'npm',
      [
        'install',
        '--no-save',
        '--no-package-lock',
        '--no-audit',
        '--no-fund',
        '--prefix',
        dir,
        `${platformPackage()}@${version}`,
      ],
      {
        timeout: 10 * 60_000,
      },
    );
  } catch (e) {
    const detail = ((e as { stderr?: string }).stderr ?? '').trim().split('\n').pop();
    throw new ErrandError(
      'sandbox_setup',
      `Cannot install Claude Code ${version} from the npm registry: ${detail || (e as Error).message}`,
    );
  }
  if (!existsSync(bin))
    throw new ErrandError(
      'sandbox_setup',
      `Claude Code ${version} installed, but ${bin} is missing`,
    );
  return bin;
}
