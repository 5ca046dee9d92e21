/**
 * Sandbox start: from "task ready" (runContainer called, image cached) to the first byte a
 * command in the container writes, against bare `podman run --rm --network none IMAGE true`
 * measured in the same run. Target (issue "Sandbox"): under 1.5x the baseline.
 *
 *   bash scripts/node.sh bench/sandbox-start.ts [--runs N]
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  BASE_IMAGE,
  type ContainerFolders,
  containerFolders,
  ensurePodmanEnv,
  runContainer,
} from '../src/sandbox/index.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '15' } } });
const RUNS = Number(values.runs);

function bare(env: NodeJS.ProcessEnv): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn('podman', ['run', '--rm', '--network', 'none', BASE_IMAGE, 'true'], {
      env,
      stdio: 'ignore',
    });
    p.once('exit', (code) =>
      code === 0 ? resolve(performance.now() - t0) : reject(new Error(`podman exited ${code}`)),
    );
  });
}

async function sandboxed(
  env: NodeJS.ProcessEnv,
  folders: ContainerFolders,
  workspace: string,
  i: number,
): Promise<number> {
  const t0 = performance.now();
  let first = 0;
  const r = await runContainer(
    {
      image: BASE_IMAGE,
      name: `errand-bench-${process.pid}-${i}`,
      command: ['echo', 'x'],
      mounts: [{ source: workspace, target: '/workspace' }],
      env: { IS_SANDBOX: '1' },
      limits: { memory: '1g', cpus: 1, pids: 512 },
      network: { kind: 'none' },
      labels: { 'errand.instance': 'bench' },
      timeoutMs: 60_000,
      onStdout: () => {
        first ||= performance.now();
      },
    },
    env,
    folders,
  );
  if (r.outcome !== 'exited' || !first)
    throw new Error(`sandbox run failed: ${r.outcome} ${r.stderrTail}`);
  return first - t0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dir = mkdtempSync(join(tmpdir(), 'errand-bench-'));
try {
  const env = await ensurePodmanEnv(join(dir, 'state'));
  const folders = containerFolders(join(dir, 'state'), join(dir, 'sandboxes'));
  const workspace = join(dir, 'workspace');
  mkdirSync(workspace);
  await bare(env);
  await sandboxed(env, folders, workspace, -1);
  const baseline: number[] = [];
  const ours: number[] = [];
  // Interleaved, so drift in machine load hits both alike.
  for (let i = 0; i < RUNS; i++) {
    baseline.push(await bare(env));
    ours.push(await sandboxed(env, folders, workspace, i));
  }
  const b = median(baseline);
  const o = median(ours);
  console.log(`sandbox start, ${RUNS} runs each, cached image ${BASE_IMAGE}`);
  console.log(`  baseline: podman run --rm --network none IMAGE true    median ${b.toFixed(0)} ms`);
  console.log(
    `  errand: task ready -> first byte from the container     median ${o.toFixed(0)} ms`,
  );
  console.log(`  ratio ${(o / b).toFixed(2)} (target < 1.5)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
