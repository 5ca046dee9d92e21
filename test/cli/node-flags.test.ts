import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ERRAND_NODE_FLAGS } from '../../src/cli/node-flags.ts';
import { systemdUnit } from '../../src/cli/service.ts';

// errand's process needs its Node flags (docs/gateway.md, memory under a backlog) however
// it is started: each launch path is held to the one list in src/cli/node-flags.ts.
const root = fileURLToPath(new URL('../..', import.meta.url));

describe("errand's Node flags", () => {
  it('are passed to node by the errand command’s shebang', () => {
    const shebang = readFileSync(join(root, 'src/cli/errand.ts'), 'utf8').split('\n', 1)[0]!;
    // Run for real: a script with the same first line says what node was started with.
    const dir = mkdtempSync(join(tmpdir(), 'errand-shebang-'));
    try {
      const script = join(dir, 'errand');
      writeFileSync(script, `${shebang}\nconsole.log(JSON.stringify(process.execArgv));\n`);
      chmodSync(script, 0o755);
      const r = spawnSync(script, [], {
        encoding: 'utf8',
        env: { PATH: `${dirname(process.execPath)}:/usr/bin:/bin` },
      });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), ERRAND_NODE_FLAGS);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('are passed to node by scripts/start.sh', () => {
    const start = readFileSync(join(root, 'scripts/start.sh'), 'utf8');
    const exec = /^exec "\$node_path" (.*?) ?"\$root\/src\/cli\/errand\.ts" start "\$@"$/m.exec(
      start,
    );
    assert.ok(exec, 'start.sh ends by running errand.ts start');
    assert.deepEqual(exec[1]!.split(' ').filter(Boolean), ERRAND_NODE_FLAGS);
  });

  it('are passed to node by the systemd unit', () => {
    const unit = systemdUnit({ nodePath: '/usr/bin/node', mainPath: '/srv/errand/errand.js' });
    assert.match(
      unit,
      new RegExp(
        `^ExecStart=/usr/bin/node ${ERRAND_NODE_FLAGS.join(' ')} /srv/errand/errand.js start$`,
        'm',
      ),
    );
  });
});
