/**
 * A gateway with the real sandbox executor (podman, the proxy, held sandboxes) in its own
 * process, for crash tests: the parent kills it with SIGKILL mid-task and starts it again
 * on the same folders.
 *
 * argv[2]: the config file; argv[3]: the state folder; argv[4]: the sandbox folder.
 * stdin: one JSON message per line {thread, text} (the text is the ShellAgent's script),
 * or {close: true} to shut down cleanly. stdout: one JSON event per line: `ready` once
 * started (after the start-up clean-up), `task` on each task state, `replied` with the
 * reply's text once a task's held sandboxes are started too, `closed`.
 */
import { createInterface } from 'node:readline';
import { loadServerConfig } from '../../src/config/index.ts';
import type { Task } from '../../src/domain/index.ts';
import { startSandboxGateway } from './sandbox-gateway.ts';
import { ShellAgent } from './shell-agent.ts';

const [configPath, stateDir, sandboxDir] = process.argv.slice(2) as [string, string, string];
const out = (ev: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(ev)}\n`);

const loaded = await loadServerConfig({ path: configPath, env: {} });
if (loaded.status !== 'ok') throw new Error(JSON.stringify(loaded));
const g = await startSandboxGateway({
  config: loaded.config,
  stateDir,
  sandboxDir,
  agent: new ShellAgent(),
});
g.gateway.events.on('task', (t: Task) => out({ ev: 'task', id: t.id, state: t.state }));
out({ ev: 'ready' });
const channel = g.channels.get('app')!;
let n = 0;
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const m = JSON.parse(line) as { thread?: string; text?: string; close?: boolean };
  if (m.close) {
    await g.close();
    out({ ev: 'closed' });
    process.exit(0);
  }
  const sent = channel.sent.length;
  void channel.send(m.text!, { thread: m.thread!, id: `m${n++}` }).then(async () => {
    const d = (await channel.waitForSent(sent + 1, 240_000))[sent]!.delivery;
    await g.executor.settle();
    out({ ev: 'replied', text: d.text });
  });
}
