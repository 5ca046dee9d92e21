import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { defaultConfigPath, formatConfigIssues, loadServerConfig } from '../config/index.ts';
import { ErrandError } from '../util/errors.ts';
import { ERRAND_NODE_FLAGS } from './node-flags.ts';

const UNIT = 'errand.service';

function unitPath(env: NodeJS.ProcessEnv): string {
  const base =
    env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME)
      ? env.XDG_CONFIG_HOME
      : join(env.HOME ?? homedir(), '.config');
  return join(base, 'systemd', 'user', UNIT);
}

/** Quotes one ExecStart word the way systemd reads it (systemd.syntax: double quotes, \\ escapes, %% for %). */
function quote(word: string): string {
  const escaped = word.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/%/g, '%%');
  return /[\s"'\\%$;]/.test(word) ? `"${escaped}"` : escaped;
}

function envLine(name: string, value: string): string {
  return `Environment=${quote(`${name}=${value}`)}`;
}

export function systemdUnit(opts: {
  nodePath: string;
  mainPath: string;
  configPath?: string;
  workingDirectory?: string;
  env?: Record<string, string>;
  stopTimeoutSeconds?: number;
}): string {
  const exec = [
    opts.nodePath,
    ...ERRAND_NODE_FLAGS,
    opts.mainPath,
    'start',
    ...(opts.configPath ? ['--config', opts.configPath] : []),
  ]
    .map(quote)
    .join(' ');
  return [
    '[Unit]',
    'Description=errand: sandboxed coding-agent gateway',
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${exec}`,
    ...(opts.workingDirectory ? [`WorkingDirectory=${quote(opts.workingDirectory)}`] : []),
    ...Object.entries(opts.env ?? {}).map(([k, v]) => envLine(k, v)),
    'Restart=on-failure',
    'RestartSec=5',
    'KillSignal=SIGTERM',
    // Running tasks get the shutdown grace period, plus time to report and stop channels.
    `TimeoutStopSec=${(opts.stopTimeoutSeconds ?? 30) + 30}`,
    '',
    '[Install]',
    'WantedBy=default.target',
    '',
  ].join('\n');
}

async function systemctl(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ ok: boolean; error: string }> {
  try {
    await promisify(execFile)('systemctl', ['--user', ...args], { env, timeout: 30_000 });
    return { ok: true, error: '' };
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    return { ok: false, error: (err.stderr || err.message).trim().split('\n')[0] ?? '' };
  }
}

/**
 * Writes and enables the unit for the config file at `configPath` (default: the usual
 * one). Without a config file this refuses (`usage`): embedded defaults take the checkout
 * errand starts in and the model credential of its environment, and a service starts in
 * $HOME with neither. A config the service could not load (invalid, or an `!env` only
 * this shell has) is refused too (`config_invalid`), before anything is written.
 */
export async function installService(opts: {
  env?: NodeJS.ProcessEnv;
  configPath?: string;
  dryRun?: boolean;
  nodePath?: string;
  mainPath?: string;
  stopTimeoutSeconds?: number;
}): Promise<{ unitPath: string; unit: string; enabled: boolean; message: string }> {
  const env = opts.env ?? process.env;
  const path = unitPath(env);
  const configPath = resolve(opts.configPath ?? defaultConfigPath(env));
  const unitEnv: Record<string, string> = {
    PATH: env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    // Set when errand is installed, kept for the service: podman's config, and the CAs
    // of mail or other servers with certificates from a private CA.
    ...Object.fromEntries(
      (['CONTAINERS_CONF', 'NODE_EXTRA_CA_CERTS'] as const).flatMap((k) =>
        env[k] ? [[k, env[k]]] : [],
      ),
    ),
  };
  await requireServiceConfig(configPath, opts.configPath !== undefined, {
    // What systemd gives a user service, plus what the unit sets.
    HOME: env.HOME ?? homedir(),
    ...unitEnv,
  });
  const unit = systemdUnit({
    nodePath: opts.nodePath ?? process.execPath,
    // The command's entry beside this file: errand.ts from sources, errand.js in dist/.
    mainPath:
      opts.mainPath ?? fileURLToPath(import.meta.url).replace(/service\.(ts|js)$/, 'errand.$1'),
    // Always named: the service does not see this shell's XDG_CONFIG_HOME.
    configPath,
    env: unitEnv,
    stopTimeoutSeconds: opts.stopTimeoutSeconds,
  });
  if (opts.dryRun) return { unitPath: path, unit, enabled: false, message: `Would write ${path}` };
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, unit);
  const reload = await systemctl(['daemon-reload'], env);
  const enable = reload.ok ? await systemctl(['enable', '--now', UNIT], env) : reload;
  if (enable.ok) {
    return {
      unitPath: path,
      unit,
      enabled: true,
      message: `Installed and started ${path}.\nLogs: journalctl --user -u errand -f\nTo keep it running after you log out: loginctl enable-linger $USER`,
    };
  }
  return {
    unitPath: path,
    unit,
    enabled: false,
    message: `Wrote ${path}, but systemctl could not enable it (${enable.error || 'systemctl not found'}).\nIn a login session with systemd, run:\n  systemctl --user daemon-reload && systemctl --user enable --now ${UNIT}\n  loginctl enable-linger $USER   # keep it running after you log out`,
  };
}

async function requireServiceConfig(
  configPath: string,
  named: boolean,
  serviceEnv: NodeJS.ProcessEnv,
): Promise<void> {
  if (!existsSync(configPath)) {
    if (named) {
      throw new ErrandError(
        'config_missing',
        `No config file at ${configPath}. Create one with: errand init --config ${configPath}`,
      );
    }
    throw new ErrandError(
      'usage',
      `No config file at ${configPath}: a service on embedded defaults would start in your home folder with no repository and no model credential. In the repository's checkout run errand init (and put the API key in secrets.env beside the config), then errand install-service.`,
    );
  }
  const loaded = await loadServerConfig({ path: configPath, env: serviceEnv });
  if (loaded.status === 'invalid') {
    throw new ErrandError(
      'config_invalid',
      `The service could not load its config (it sees only HOME, PATH, CONTAINERS_CONF and NODE_EXTRA_CA_CERTS of this environment; put other !env values in .env beside the config):\n${formatConfigIssues(loaded.issues)}\nFix it, check with errand check --config ${configPath}, and run errand install-service again.`,
    );
  }
}

export async function uninstallService(opts: {
  env?: NodeJS.ProcessEnv;
  dryRun?: boolean;
}): Promise<{ unitPath: string; removed: boolean; message: string }> {
  const env = opts.env ?? process.env;
  const path = unitPath(env);
  if (!existsSync(path))
    return { unitPath: path, removed: false, message: `No unit at ${path}; nothing to remove.` };
  if (opts.dryRun)
    return { unitPath: path, removed: false, message: `Would disable ${UNIT} and remove ${path}` };
  await systemctl(['disable', '--now', UNIT], env);
  rmSync(path, { force: true });
  await systemctl(['daemon-reload'], env);
  return { unitPath: path, removed: true, message: `Removed ${path}.` };
}
