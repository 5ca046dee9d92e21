/**
 * A gateway with the real sandbox executor and the Claude Code CLI, in its own process, for
 * crash tests that need the real agent: the parent kills it with SIGKILL mid-task and starts
 * it again on the same state. SIGTERM shuts it down as errand does (sandboxes removed).
 *
 * argv[2]: folder holding errand.yaml; the state is in its `state` folder.
 * stdin: one JSON message per line {id, thread, text}, sent through the repository `app`'s
 * web channel. stdout: one JSON event per line (ready, task, delivery).
 */
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ClaudeCodeRunner } from '../../src/agent/index.ts';
import { loadServerConfig } from '../../src/config/index.ts';
import type { Task } from '../../src/domain/index.ts';
import { startSandboxGateway } from './sandbox-gateway.ts';

const dir = process.argv[2]!;
const out = (ev: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(ev)}\n`);

const config = await loadServerConfig({ path: join(dir, 'errand.yaml'), env: {} });
if (config.status !== 'ok') throw new Error(JSON.stringify(config));
const g = await startSandboxGateway({
  config: config.config,
  stateDir: join(dir, 'state'),
  agent: new ClaudeCodeRunner(),
});
g.gateway.events.on('task', (t: Task) =>
  out({ ev: 'task', id: t.id, state: t.state, conversationId: t.conversationId }),
);
process.once('SIGTERM', () => {
  void g.close().then(() => process.exit(0));
});
out({ ev: 'ready' });
const channel = g.channels.get('app')!;
// Read from the channel, not the gateway's events: recovery sends notices while it starts.
void (async () => {
  for (let n = 0; ; n++) {
    const { delivery: d } = (await channel.waitForSent(n + 1, 3_600_000))[n]!;
    out({ ev: 'delivery', kind: d.kind, text: d.text, conversationId: d.conversationId });
  }
})();
for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const m = JSON.parse(line) as { id: string; thread: string; text: string };
  await channel.send(m.text, { thread: m.thread, id: m.id });
  out({ ev: 'stored', id: m.id });
}
