import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The address every name resolves to inside a sandbox; on loopback, so no interface exists. */
export const SANDBOX_ADDRESS = '127.0.0.2';

const RELAY = fileURLToPath(
  new URL(
    import.meta.url.endsWith('.ts') ? './relay/relay.ts' : './relay/relay.js',
    import.meta.url,
  ),
);

export interface SandboxNetns {
  /** Path a container joins with `--network ns:PATH`. */
  path: string;
  /** The address to give the container as its DNS server. */
  dns: string;
  /** Leads the relay to a proxy session (for one started without one). */
  attach(socketBase: string): void;
  close(): Promise<void>;
}

/**
 * Creates a private network namespace (loopback only) held by the relay process, which
 * answers DNS and forwards ports 80 and 443 to the proxy session's sockets. As root with
 * `unshare --net`; as a normal user inside podman's user namespace (`podman unshare`).
 */
export async function startSandboxNetns(
  socketPath: string | undefined,
  podmanEnv: NodeJS.ProcessEnv,
): Promise<SandboxNetns> {
  const inner = [
    'unshare',
    '--net',
    'sh',
    '-c',
    'ip link set lo up && exec "$0" "$@"',
    process.execPath,
    RELAY,
    socketPath ?? '-',
    SANDBOX_ADDRESS,
  ];
  const argv = process.getuid?.() === 0 ? inner : ['podman', 'unshare', ...inner];
  // The relay's stdin is a pipe from this process: when errand dies, even by SIGKILL, the
  // relay reads end-of-file and exits, so no namespace outlives the errand that made it.
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), {
    env: podmanEnv,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c) => {
    stderr = (stderr + c).slice(-2000);
  });
  const pid = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the sandbox network did not start in time: ${stderr.trim()}`)),
      20_000,
    );
    child.stdout!.on('data', (c: Buffer) => {
      const m = /ready (\d+)/.exec(c.toString());
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(
        new Error(`the sandbox network helper exited (${code}): ${stderr.trim() || 'no output'}`),
      );
    });
  });
  // Started, the relay must not keep errand's process alive by itself (a spare may sit
  // unused until errand exits); its stdin pipe still ends it when errand goes.
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr]) {
    (stream as unknown as { unref?: () => void } | null)?.unref?.();
  }
  return {
    path: `/proc/${pid}/ns/net`,
    dns: SANDBOX_ADDRESS,
    attach: (socketBase) => {
      child.stdin!.write(`${socketBase}\n`);
    },
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      // Signal the relay itself: `podman unshare` (rootless) does not pass signals on.
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        child.kill('SIGTERM');
      }
      await exited;
    },
  };
}

/**
 * Keeps one sandbox network started ahead of the next task, so a task does not wait for
 * the relay to start (about 100 ms). A network is used by one task only.
 */
export class WarmNetns {
  readonly #env: NodeJS.ProcessEnv;
  #spare: Promise<SandboxNetns> | undefined;

  constructor(podmanEnv: NodeJS.ProcessEnv) {
    this.#env = podmanEnv;
  }

  /** A network whose relay leads to `socketBase`: the spare when it is ready, else a new one. */
  async take(socketBase: string): Promise<SandboxNetns> {
    const spare = this.#spare;
    this.#spare = undefined;
    const ready = await spare?.catch(() => undefined);
    const ns = ready ?? (await startSandboxNetns(undefined, this.#env));
    ns.attach(socketBase);
    this.#spare = startSandboxNetns(undefined, this.#env);
    this.#spare.catch(() => undefined);
    return ns;
  }

  async close(): Promise<void> {
    const spare = this.#spare;
    this.#spare = undefined;
    await (await spare?.catch(() => undefined))?.close();
  }
}
