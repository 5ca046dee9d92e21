import { type ChildProcess, spawn } from 'node:child_process';
import { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The address every name resolves to inside a sandbox; on loopback, so no interface exists. */
export const SANDBOX_ADDRESS = '127.0.0.2';

const RELAY = fileURLToPath(
  new URL(
    import.meta.url.endsWith('.ts') ? './relay/relay.ts' : './relay/relay.js',
    import.meta.url,
  ),
);

/** Where the relay's connections go: the proxy session of the task using the network. */
export type AcceptConnection = (socket: Socket, port: 80 | 443) => void;

export interface SandboxNetns {
  /** Path a container joins with `--network ns:PATH`. */
  path: string;
  /** The address to give the container as its DNS server. */
  dns: string;
  /** Leads the relay's connections to a proxy session; until then they are refused. */
  attach(accept: AcceptConnection): void;
  close(): Promise<void>;
}

/** A new namespace whose connections go to `accept` from the start. */
export async function openSandboxNetns(
  podmanEnv: NodeJS.ProcessEnv,
  accept: AcceptConnection,
): Promise<SandboxNetns> {
  const ns = await startSandboxNetns(podmanEnv);
  ns.attach(accept);
  return ns;
}

/**
 * Creates a private network namespace (loopback only) held by the relay process, which
 * answers DNS and hands connections on ports 80 and 443 to errand over an IPC channel. As
 * root with `unshare --net`; as a normal user inside podman's user namespace
 * (`podman unshare`). Both keep the channel's file descriptor and stdin across their exec;
 * the relay exits when stdin, whose write end only errand holds, reaches its end.
 */
export async function startSandboxNetns(podmanEnv: NodeJS.ProcessEnv): Promise<SandboxNetns> {
  const inner = [
    'unshare',
    '--net',
    'sh',
    '-c',
    'ip link set lo up && exec "$0" "$@"',
    process.execPath,
    RELAY,
    SANDBOX_ADDRESS,
  ];
  const argv = process.getuid?.() === 0 ? inner : ['podman', 'unshare', ...inner];
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), {
    env: podmanEnv,
    // stdin: a pipe errand never writes to, whose end of file tells the relay errand is gone.
    stdio: ['pipe', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr!.on('data', (c) => {
    stderr = (stderr + c).slice(-2000);
  });
  let accept: AcceptConnection | undefined;
  const pid = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the sandbox network did not start in time: ${stderr.trim()}`)),
      20_000,
    );
    child.on('message', (m: { ready?: number; port?: number }, handle?: unknown) => {
      if (typeof m.ready === 'number') {
        clearTimeout(timer);
        resolve(m.ready);
      } else if (handle instanceof Socket) {
        if (accept && (m.port === 80 || m.port === 443)) accept(handle, m.port);
        else handle.destroy();
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
  // unused until errand exits); its stdin still ends it when errand goes.
  child.unref();
  child.channel?.unref();
  for (const pipe of [child.stdin, child.stderr])
    (pipe as unknown as { unref?: () => void } | null)?.unref?.();
  return {
    path: `/proc/${pid}/ns/net`,
    dns: SANDBOX_ADDRESS,
    attach: (a) => {
      accept = a;
    },
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      // Unreferenced since its start, the relay must hold errand open while it is awaited.
      child.ref();
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
 * the relay to start (about 100 ms). A network is used by one task only. The spare is
 * replaced when a task's network closes, not when it is taken: starting a relay (a Node
 * process) while the task's container and CLI start would slow both on a small machine.
 */
export class WarmNetns {
  readonly #env: NodeJS.ProcessEnv;
  #spare: Promise<SandboxNetns> | undefined;
  #closed = false;

  constructor(podmanEnv: NodeJS.ProcessEnv) {
    this.#env = podmanEnv;
  }

  /**
   * A network whose relay leads to `accept`: the spare when it is ready, else a new one.
   * Without `accept`, connections are refused until `attach` is called.
   */
  async take(accept?: AcceptConnection): Promise<SandboxNetns> {
    const spare = this.#spare;
    this.#spare = undefined;
    const ns = (await spare?.catch(() => undefined)) ?? (await startSandboxNetns(this.#env));
    if (accept) ns.attach(accept);
    return {
      ...ns,
      close: async () => {
        await ns.close();
        this.refill();
      },
    };
  }

  /** Starts a spare when there is none: for a caller that took one in the background. */
  refill(): void {
    if (this.#spare || this.#closed) return;
    this.#spare = startSandboxNetns(this.#env);
    this.#spare.catch(() => undefined);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const spare = this.#spare;
    this.#spare = undefined;
    await (await spare?.catch(() => undefined))?.close();
  }
}
