import { createHash } from 'node:crypto';
import { ensurePodmanEnv, runPodman } from '../../src/sandbox/index.ts';

/**
 * The held sandboxes of the errand whose state folder is `stateDir`. Other test files run
 * beside one, with held sandboxes of their own: only this installation's are listed.
 */
export async function heldContainers(stateDir: string): Promise<string[]> {
  const instance = `gw-${createHash('sha256').update(stateDir).digest('hex').slice(0, 12)}`;
  const r = await runPodman(
    [
      'ps',
      '--all',
      '--filter',
      'label=errand.task=held',
      '--filter',
      `label=errand.instance=${instance}`,
      '--format',
      '{{.Names}}',
    ],
    { env: await ensurePodmanEnv(stateDir) },
  );
  return r.stdout.split('\n').filter(Boolean);
}
