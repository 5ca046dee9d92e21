/**
 * What errand adds around one agent turn: the same Claude Code CLI against the same
 * scripted model server, run directly on the host (baseline: HTTPS on loopback, as the CLI
 * talks to the real API) and through errand (mirror refresh, trusted files, cached image,
 * proxy session and namespace, container start, CLI start, event parsing and storing),
 * measured in the same run. Both turns end when the answer is known (the CLI's result
 * line), as errand's reply does; the CLI's exit and the container's removal are not
 * counted. errand's turns: a new conversation in the sandbox errand holds for it, the same
 * in a sandbox started for the turn (a second new conversation at once, or
 * execution.hold_sandbox off), and a follow-up resuming its session in the sandbox held
 * for its conversation, against a follow-up with --resume on the host. Target (issue
 * "Agent"): under 1.3x. Needs podman and the base image.
 *
 *   bash scripts/node.sh bench/agent-turn.ts [--runs N]
 */

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ClaudeCodeRunner, claudeArgs } from '../src/agent/index.ts';
import { defaultCacheDir } from '../src/config/index.ts';
import { SandboxExecutor } from '../src/execution/index.ts';
import {
  BASE_IMAGE,
  DEFAULT_CLAUDE_CODE_VERSION,
  ensureClaudeCli,
  ensurePodmanEnv,
  runPodman,
} from '../src/sandbox/index.ts';
import { silentLogger } from '../src/util/logger.ts';
import { configFrom } from '../test/harness/gateway-fixture.ts';
import { initRepo } from '../test/harness/git.ts';
import { startModelServer } from '../test/harness/model-server.ts';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const RUNS = Number(values.runs);
const API_HOST = 'api.model.test';
const KEY = 'sk-ant-api03-BenchKey0123456789abcdefghijklmnopqrstuv';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dir = mkdtempSync(join(tmpdir(), 'errand-agent-bench-'));
try {
  const model = await startModelServer(join(dir, 'model-ca'), API_HOST, () => [
    { type: 'text', text: 'ok' },
  ]);
  writeFileSync(join(dir, 'model-ca.pem'), model.caPem);
  const origin = initRepo(join(dir, 'origin'), {
    '.errand/container/Containerfile': `FROM ${BASE_IMAGE}\n`,
    'README.md': 'x\n',
  });
  const config = await configFrom(
    `repos:\n  app:\n    git_url: ${origin}\n    agent:\n      api_key: ${KEY}\n      api_host: ${API_HOST}\n    network:\n      resolve: { ${API_HOST}: "127.0.0.1:${model.port}" }\n      upstream_ca: ${join(dir, 'model-ca.pem')}\n`,
    mkdtempSync(join(dir, 'cfg-')),
  );
  const cache = defaultCacheDir();
  const claude = await ensureClaudeCli(cache, DEFAULT_CLAUDE_CODE_VERSION);

  // Baseline: the CLI on the host, straight to the server, the prompt on stdin as errand
  // gives it. Over HTTPS, as it talks to the real API (errand's CLI does too, through the
  // proxy); over plain HTTP for comparison. Its turn ends at the result line, as errand's.
  // A follow-up resumes the session of an earlier turn in the same home.
  const direct = async (i: number, tls: boolean, follow?: { home: string; session: string }) => {
    const home = follow?.home ?? mkdtempSync(join(dir, `direct-${i}-`));
    const env = {
      PATH: process.env.PATH,
      HOME: home,
      CLAUDE_CONFIG_DIR: join(home, 'claude'),
      IS_SANDBOX: '1',
      ANTHROPIC_API_KEY: KEY,
      ANTHROPIC_BASE_URL: tls
        ? `https://localhost:${model.port}`
        : `http://127.0.0.1:${model.plainPort}`,
      NODE_EXTRA_CA_CERTS: join(dir, 'model-ca.pem'),
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      CLAUDE_CODE_MAX_RETRIES: '1',
    };
    const t0 = performance.now();
    const child = spawn(claude, claudeArgs('claude-sonnet-4-5', follow?.session), {
      cwd: origin,
      env,
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    child.stdin.end('hello');
    let answered: number | undefined;
    let session = '';
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      const lines = out.split('\n');
      out = lines.pop()!;
      for (const l of lines) {
        const e = JSON.parse(l) as { type?: string; session_id?: string };
        if (answered === undefined && e.type === 'result') {
          answered = performance.now();
          session = e.session_id ?? '';
        }
      }
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    if (code !== 0 || answered === undefined)
      throw new Error(`the CLI on the host exited ${code} without a result line`);
    return { ms: answered - t0, home, session };
  };

  const executor = await SandboxExecutor.onHost({
    stateDir: join(dir, 'state'),
    sandboxDir: join(dir, 'sandboxes'),
    cacheDir: cache,
    imageMaxAgeMs: 3_600_000,
    config: () => config,
    agent: new ClaudeCodeRunner(),
    logger: silentLogger(),
  });
  let stored = 0;
  let held = 0;
  let seq = 0;
  /** One turn through errand: a new conversation, or a follow-up in `follow`'s. */
  const viaErrand = async (follow?: { conversation: string; session: string }) => {
    const now = Date.now();
    const id = follow?.conversation ?? `c_bench${++seq}`;
    let wasHeld = false;
    const t0 = performance.now();
    const outcome = await executor.run(
      {
        task: {
          id: `t_bench${++seq}`,
          conversationId: id,
          repoId: 'app',
          state: 'running',
          seq,
          createdAt: now,
        },
        conversation: {
          id,
          repoId: 'app',
          channel: 'web',
          threadKey: id,
          title: 'bench',
          createdAt: now,
          updatedAt: now,
          sessionId: follow?.session,
        },
        parts: [{ sender: 'bench', at: now, text: 'hello', attachments: [] }],
        firstTask: !follow,
      },
      new AbortController().signal,
      {
        event: async (type, data) => {
          stored++;
          if (type === 'sandbox' && (data as { step?: string }).step === 'held') wasHeld = true;
        },
      },
    );
    if (outcome.kind !== 'success') throw new Error(`errand turn failed: ${outcome.text}`);
    const ms = performance.now() - t0;
    if (wasHeld) held++;
    return { ms, conversation: id, session: outcome.sessionId ?? '' };
  };

  await direct(-1, true);
  await viaErrand();
  const m = {
    base: [] as number[],
    plain: [] as number[],
    ours: [] as number[],
    cold: [] as number[],
    baseFollow: [] as number[],
    oursFollow: [] as number[],
  };
  // Each measurement starts on a quiet machine: errand's background work after a turn
  // (container removal, the next held sandbox) must not be charged to the next run.
  const quiet = async () => {
    await executor.settle();
    await new Promise((r) => setTimeout(r, 500));
  };
  const turns = RUNS * 3;
  for (let i = 0; i < RUNS; i++) {
    await quiet();
    const first = await direct(i, true);
    m.base.push(first.ms);
    await quiet();
    m.baseFollow.push((await direct(i, true, first)).ms);
    await quiet();
    m.plain.push((await direct(i, false)).ms);
    await quiet();
    const ours = await viaErrand();
    m.ours.push(ours.ms);
    await quiet();
    m.oursFollow.push((await viaErrand(ours)).ms);
    // The same turn in a sandbox started for it: what a new conversation gets while the
    // held one is taken, and with execution.hold_sandbox off.
    await quiet();
    config.execution.hold_sandbox = false;
    m.cold.push((await viaErrand()).ms);
    config.execution.hold_sandbox = true;
  }
  await executor.settle();
  await executor.close();

  // The floor of any design that starts a container per turn: podman starting one that
  // runs `true` (removal not counted; errand removes containers after the reply).
  const podmanEnv = await ensurePodmanEnv(join(dir, 'state'));
  const starts: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    await quiet();
    const t0 = performance.now();
    const r = await runPodman(
      ['run', '--name', `errand-bench-floor-${i}`, '--network', 'none', BASE_IMAGE, 'true'],
      { env: podmanEnv },
    );
    starts.push(performance.now() - t0);
    await runPodman(['rm', '--force', `errand-bench-floor-${i}`], { env: podmanEnv });
    if (r.code !== 0) throw new Error(`podman run failed: ${r.stderr}`);
  }
  const b = median(m.base);
  const o = median(m.ours);
  const c = median(m.cold);
  const bf = median(m.baseFollow);
  const of = median(m.oursFollow);
  console.log(
    `one agent turn, ${RUNS} runs each, Claude Code ${DEFAULT_CLAUDE_CODE_VERSION} against a scripted model server`,
  );
  const row = (label: string, ms: number, rest = '') =>
    console.log(`  ${label.padEnd(62)} median ${ms.toFixed(0).padStart(4)} ms${rest}`);
  row('baseline: the CLI on the host, HTTPS to the server', b);
  row('  (the same over plain HTTP)', median(m.plain));
  row(
    'errand: a new conversation, in the sandbox held for it',
    o,
    `  ratio ${(o / b).toFixed(2)} (target < 1.3)`,
  );
  row(
    'errand: a new conversation, in a sandbox started for it',
    c,
    `  ratio ${(c / b).toFixed(2)}`,
  );
  row('baseline: a follow-up, --resume on the host', bf);
  row(
    'errand: a follow-up, in the sandbox held for its conversation',
    of,
    `  ratio ${(of / bf).toFixed(2)} (target < 1.3)`,
  );
  console.log(
    `    (workspace, image, proxy, container, CLI; ${held} of ${turns + 1} errand turns held, ${stored} events stored)`,
  );
  const p = median(starts);
  console.log(
    `  floor: podman run of \`true\` alone ${p.toFixed(0)} ms; the baseline plus that is ratio ${((b + p) / b).toFixed(2)}; a sandbox started for the turn adds ${(c - b - p).toFixed(0)} ms beyond it`,
  );
  await model.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
