import { createHash } from 'node:crypto';
import { ensurePodmanEnv, runPodman } from '../../src/sandbox/index.ts';

/**
 * The containers, running or not, of the errand whose state folder is `stateDir`; with
 * `task`, only those labelled for that task (`held`: its held sandboxes). Other test files
 * run beside one, with containers of their own: only this installation's are listed.
 */
export async function containersOf(stateDir: string, task?: string): Promise<string[]> {
  const instance = `gw-${createHash('sha256').update(stateDir).digest('hex').slice(0, 12)}`;
  const r = await runPodman(
    [
      'ps',
      '--all',
      ...(task ? ['--filter', `label=errand.task=${task}`] : []),
      '--filter',
      `label=errand.instance=${instance}`,
      '--format',
      '{{.Names}}',
    ],
    { env: await ensurePodmanEnv(stateDir) },
  );
  return r.stdout.split('\n').filter(Boolean);
}

/** The held sandboxes of the errand whose state folder is `stateDir`. */
export function heldContainers(stateDir: string): Promise<string[]> {
  return containersOf(stateDir, 'held');
}
