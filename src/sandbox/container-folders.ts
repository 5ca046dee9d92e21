import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ownedName, removeLeftBehind } from '../util/owned-names.ts';
import type { SandboxMount } from './container.ts';

/** The host name every sandbox has, whatever host it runs on. */
export const SANDBOX_HOSTNAME = 'sandbox';

/**
 * The sandbox's /etc/hosts. podman's own would copy the host's hosts file (its names and
 * addresses) and add host.containers.internal with an address of the host.
 */
export const HOSTS_FILE = `127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
127.0.1.1\t${SANDBOX_HOSTNAME}
`;

/** A file of errand's own that a container gets read-only at `target`. */
export interface ContainerFile {
  target: string;
  content: string | Buffer;
  executable?: boolean;
}

/**
 * Where a container's host-side files live; neither is the system temp folder.
 * A container's mount table shows the host path of every bind mount, so what it mounts
 * comes from `files` (under the sandbox folder), never from errand's state, cache or
 * config folders.
 */
export interface ContainerFolders {
  /** Env files (0600, in a 0700 folder under the state folder); never mounted. */
  env: string;
  /** Each container's folder of copies of errand's files (`<sandboxDir>/tasks`). */
  files: string;
}

/** The container folders of an installation, created when missing. */
export function containerFolders(stateDir: string, sandboxDir: string): ContainerFolders {
  const folders = { env: join(stateDir, 'sandbox', 'env'), files: join(sandboxDir, 'tasks') };
  for (const d of [folders.env, folders.files]) {
    mkdirSync(d, { recursive: true, mode: 0o700 });
    chmodSync(d, 0o700);
  }
  return folders;
}

/** Deletes what containers of errand processes that are gone left (after a crash). */
export function removeLeftContainerFiles(folders: ContainerFolders): string[] {
  return [...removeLeftBehind(folders.env), ...removeLeftBehind(folders.files)];
}

/** A container's own folder: its copies of errand's files, and the mounts that show them. */
export interface OwnFiles {
  dir: string;
  mounts: SandboxMount[];
}

/**
 * Writes the container's hosts file and `files` into a new folder of `root` (0755, files
 * read-only, so an image's non-root user can read them) and returns their mounts.
 */
export function writeOwnFiles(root: string, files: ContainerFile[]): OwnFiles {
  const dir = join(root, ownedName());
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  const all: ContainerFile[] = [{ target: '/etc/hosts', content: HOSTS_FILE }, ...files];
  const mounts = all.map((f, i) => {
    // Numbered, not named after the target: two targets may share a base name.
    const source = join(dir, `${i}-${f.target.split('/').pop()}`);
    writeFileSync(source, f.content, { mode: f.executable ? 0o555 : 0o444 });
    return { source, target: f.target, readOnly: true };
  });
  return { dir, mounts };
}

export function removeOwnFiles(own: OwnFiles): void {
  rmSync(own.dir, { recursive: true, force: true });
}

/** A new env file's path in `root`; the caller writes it (0600) and removes it. */
export function envFilePath(root: string): string {
  return join(root, `${ownedName()}.env`);
}
