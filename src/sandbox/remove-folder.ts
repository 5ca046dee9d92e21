import { lstat, realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import { removeTree, TreeNotRemovedError } from '../util/remove-tree.ts';
import { runPodman } from './podman.ts';

/** How long `podman unshare rm` may take on a big folder. */
const UNSHARE_TIMEOUT_MS = 600_000;

/**
 * Deletes a folder sandboxes wrote to, with everything in them, as removeTree does; then,
 * rootless, what the sandbox's user mapping left that errand's own user may not remove.
 *
 * In a rootless container the agent is root, mapped to errand's user, and may give files
 * and folders to any other uid of the container, which the host sees as one of the
 * user's sub-uids (`chown 1000 d; chmod 000 d`): only root of that mapping may remove
 * them. `podman unshare` runs a command as that root, which may also remove anything of
 * errand's user's own. So it is given one folder whose real path is the path asked for (no
 * link in it leads elsewhere), and `rm -rf --one-file-system`, which removes a link and
 * never follows it (it walks the tree by descriptors); the folders above it are errand's,
 * and no sandbox runs on it any more.
 *
 * Fails with TreeNotRemovedError when something is left: e.g. files of a uid outside the
 * mapping (the host's root), or podman could not run.
 */
export async function removeSandboxFolder(path: string, podmanEnv: NodeJS.ProcessEnv) {
  try {
    await removeTree(path);
    return;
  } catch (e) {
    // As root (rootful podman) nothing is out of errand's reach that unshare could reach.
    if (!(e instanceof TreeNotRemovedError) || process.getuid?.() === 0) throw e;
  }
  const asked = resolve(path);
  const real = await realpath(asked);
  const st = await lstat(real);
  if (real !== asked || !st.isDirectory())
    throw new TreeNotRemovedError({
      path,
      reason: 'changed',
      left: 1,
      example: { entry: '.', errno: 'ELOOP' },
    });
  const r = await runPodman(['unshare', 'rm', '-rf', '--one-file-system', '--', real], {
    env: podmanEnv,
    timeoutMs: UNSHARE_TIMEOUT_MS,
  });
  try {
    // What is left, if anything, is named by the host's walk.
    await removeTree(path);
  } catch (e) {
    if (e instanceof TreeNotRemovedError && r.code !== 0)
      // Not its stderr: that quotes names the agent chose.
      e.message += `; podman unshare rm failed too (exit ${r.code ?? 'none: podman did not start'})`;
    throw e;
  }
}
