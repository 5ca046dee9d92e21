import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { installService, systemdUnit, uninstallService } from '../../src/cli/service.ts';
import { tempHome } from '../harness/cli.ts';

describe('the systemd user unit', () => {
  it('starts errand with its config, restarts on failure and quotes paths with spaces', () => {
    const unit = systemdUnit({
      nodePath: '/opt/node 24/bin/node',
      mainPath: '/srv/errand/dist/cli/main.js',
      configPath: '/home/a/my config/errand.yaml',
      env: { PATH: '/usr/bin:/bin' },
    });
    assert.match(
      unit,
      /^ExecStart="\/opt\/node 24\/bin\/node" \/srv\/errand\/dist\/cli\/main.js start --config "\/home\/a\/my config\/errand.yaml"$/m,
    );
    assert.match(unit, /^Restart=on-failure$/m);
    assert.match(unit, /^Environment=PATH=\/usr\/bin:\/bin$/m);
    assert.match(unit, /^WantedBy=default.target$/m);
  });

  it('is written under XDG_CONFIG_HOME, says how to enable it when systemctl cannot, and is removed again', async () => {
    const { home, env } = tempHome();
    try {
      // No user systemd here: systemctl is absent or has no bus; the unit is still written.
      const r = await installService({
        env: { ...env, PATH: '/nonexistent' },
        nodePath: '/usr/bin/node',
        mainPath: '/m.js',
      });
      const path = join(home, '.config', 'systemd', 'user', 'errand.service');
      assert.equal(r.unitPath, path);
      assert.ok(existsSync(path));
      assert.match(readFileSync(path, 'utf8'), /ExecStart=\/usr\/bin\/node \/m.js start/);
      assert.equal(r.enabled, false);
      assert.match(r.message, /systemctl --user enable --now errand.service/);
      assert.match(r.message, /loginctl enable-linger/);
      const u = await uninstallService({ env: { ...env, PATH: '/nonexistent' } });
      assert.equal(u.removed, true);
      assert.equal(existsSync(path), false);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('keeps the extra CAs errand was installed with', async () => {
    const { home, env } = tempHome();
    try {
      const r = await installService({
        env: { ...env, NODE_EXTRA_CA_CERTS: '/etc/errand/mail ca.pem' },
        dryRun: true,
      });
      assert.match(r.unit, /^Environment="NODE_EXTRA_CA_CERTS=\/etc\/errand\/mail ca\.pem"$/m);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('writes nothing on a dry run', async () => {
    const { home, env } = tempHome();
    try {
      const r = await installService({ env, dryRun: true });
      assert.match(r.unit, /\[Service\]/);
      assert.doesNotMatch(r.unit, /NODE_EXTRA_CA_CERTS/);
      assert.equal(existsSync(r.unitPath), false);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
