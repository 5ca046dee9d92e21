import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cli, freePort, startErrand, tempHome } from '../harness/cli.ts';

const EXPOSED = (where: string) =>
  `the dashboard on ${where} needs no login: anyone who can reach this machine can start and stop tasks and read every conversation`;
const FIX =
  'set dashboard.require_login: true, or keep it on 127.0.0.1 behind a reverse proxy that logs people in';

/** A config with no repositories: the dashboard a test binds to 0.0.0.0 serves nothing. */
function config(home: string, dashboard: string): string {
  const path = join(home, 'errand.yaml');
  writeFileSync(path, `dashboard:\n${dashboard}`);
  return path;
}

describe('a dashboard open to the network without a login', () => {
  it('is named in a warning by errand check, which still exits 0', async () => {
    const { home, env } = tempHome();
    try {
      const path = config(home, '  host: 0.0.0.0\n  port: 5299\n  require_login: false\n');
      const r = await cli(['check', '--config', path], { env });
      assert.equal(r.code, 0, 'a warning, not a failed check');
      assert.ok(
        r.stdout.includes(
          `! the dashboard is not open to the network without a login: ${EXPOSED('0.0.0.0:5299')}\n    fix: ${FIX}`,
        ),
        r.stdout,
      );
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('is not warned about on loopback without a login, nor beyond it with one (the neighbours)', async () => {
    const { home, env } = tempHome();
    try {
      for (const d of [
        '  host: 127.0.0.1\n  require_login: false\n',
        '  host: 0.0.0.0\n  require_login: true\n',
        '  host: "::"\n',
      ]) {
        const r = await cli(['check', '--config', config(home, d), '--json'], { env });
        const exposure = (JSON.parse(r.stdout) as Array<{ id: string; status: string }>).find(
          (c) => c.id === 'exposure',
        );
        assert.equal(exposure?.status, 'ok', d);
      }
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('is named in a warning when errand start comes up', async () => {
    const { home, env } = tempHome();
    const port = await freePort();
    const path = config(home, `  host: 0.0.0.0\n  port: ${port}\n  require_login: false\n`);
    const errand = await startErrand(['--config', path], { env, cwd: home });
    try {
      const out = errand.stderr();
      assert.ok(out.includes(`  warning: ${EXPOSED(`0.0.0.0:${port}`)}; ${FIX}`), out);
      assert.match(out, /"level":40,.*"msg":"the dashboard on 0\.0\.0\.0:\d+ needs no login/);
    } finally {
      assert.equal(await errand.stop(), 0, errand.stderr());
      rmSync(home, { recursive: true, force: true });
    }
  });
});
