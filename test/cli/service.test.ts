import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { installService, systemdUnit, uninstallService } from '../../src/cli/service.ts';
import { cli, tempHome } from '../harness/cli.ts';

/** A home with a config file at the usual place, as `errand init` leaves it. */
function homeWithConfig(config = 'repos:\n  app:\n    git_url: /srv/app.git\n') {
  const h = tempHome();
  const path = join(h.home, '.config', 'errand', 'errand.yaml');
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, config, { mode: 0o600 });
  return { ...h, configPath: path };
}

describe('the systemd user unit', () => {
  it('starts errand with its config, restarts on failure and quotes paths with spaces', () => {
    const unit = systemdUnit({
      nodePath: '/opt/node 24/bin/node',
      mainPath: '/srv/errand/dist/cli/errand.js',
      configPath: '/home/a/my config/errand.yaml',
      env: { PATH: '/usr/bin:/bin' },
    });
    assert.match(
      unit,
      /^ExecStart="\/opt\/node 24\/bin\/node" --optimize-for-size \/srv\/errand\/dist\/cli\/errand.js start --config "\/home\/a\/my config\/errand.yaml"$/m,
    );
    assert.match(unit, /^Restart=on-failure$/m);
    assert.match(unit, /^Environment=PATH=\/usr\/bin:\/bin$/m);
    assert.match(unit, /^WantedBy=default.target$/m);
  });

  it('is written under XDG_CONFIG_HOME, says how to enable it when systemctl cannot, and is removed again', async () => {
    const { home, env, configPath } = homeWithConfig();
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
      assert.match(
        readFileSync(path, 'utf8'),
        new RegExp(
          `^ExecStart=/usr/bin/node --optimize-for-size /m.js start --config ${configPath}$`,
          'm',
        ),
        'the config is named: the service does not see the XDG_CONFIG_HOME of this shell',
      );
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
    const { home, env } = homeWithConfig();
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
    const { home, env } = homeWithConfig();
    try {
      const r = await installService({ env, dryRun: true });
      assert.match(r.unit, /\[Service\]/);
      assert.match(r.unit, /src\/cli\/errand\.ts start --config /, 'the entry that checks Node');
      assert.doesNotMatch(r.unit, /NODE_EXTRA_CA_CERTS/);
      assert.equal(existsSync(r.unitPath), false);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('refuses with exit 2 on embedded defaults, which a service in $HOME could not run, and writes no unit', async () => {
    const { home, env } = tempHome();
    try {
      for (const args of [['install-service'], ['install-service', '--dry-run']]) {
        const r = await cli(args, { env: { ...env, PATH: '/nonexistent' }, cwd: home });
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /No config file at .*errand init/);
        assert.equal(r.stdout, '', 'no unit printed');
      }
      assert.equal(existsSync(join(home, '.config', 'systemd')), false, 'no unit written');
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('refuses a config the service could not load: an !env value only this shell has', async () => {
    const { home, env, configPath } = homeWithConfig(
      'repos:\n  app:\n    git_url: !env APP_GIT_URL\n',
    );
    try {
      await assert.rejects(
        installService({ env: { ...env, APP_GIT_URL: '/srv/app.git' }, dryRun: true }),
        (e: Error & { code?: string }) =>
          e.code === 'config_invalid' && /APP_GIT_URL/.test(e.message) && /\.env/.test(e.message),
      );
      // The same variable in .env beside the config reaches the service.
      writeFileSync(join(configPath, '..', '.env'), 'APP_GIT_URL=/srv/app.git\n', { mode: 0o600 });
      const r = await installService({ env, dryRun: true });
      assert.match(r.unit, /start --config /);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
});
