import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { ClaudeCodeRunner } from '../agent/index.ts';
import { EmailChannel } from '../channels/email/index.ts';
import { SlackChannel } from '../channels/slack/index.ts';
import { WebChannel } from '../channels/web/index.ts';
import {
  defaultCacheDir,
  formatConfigIssues,
  loadServerConfig,
  type ServerConfig,
  sandboxDir,
  stateDir,
  watchConfig,
} from '../config/index.ts';
import { createDashboard, dashboardExposure, sha256Hex } from '../dashboard/index.ts';
import { SandboxExecutor } from '../execution/index.ts';
import { Gateway } from '../gateway/index.ts';
import { ErrandError } from '../util/errors.ts';
import { createLogger } from '../util/logger.ts';
import { controlTokenPath, openStore, requireConfig } from './context.ts';
import { scheduleImagePrune } from './image-prune.ts';
import { lockStateDir } from './instance-lock.ts';
import { VERSION } from './version.ts';

/** One image cache serves every repository: the strictest configured age applies to all. */
function imageMaxAgeMs(config: ServerConfig): number {
  const hours = Object.values(config.repos).map((r) => r.sandbox.image_max_age_hours);
  return (hours.length ? Math.min(...hours) : 168) * 3_600_000;
}

/** Reads the control token, creating it (mode 0600) on first start. */
function ensureControlToken(config: ServerConfig): string {
  const path = controlTokenPath(config);
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const token = randomBytes(32).toString('hex');
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return token;
}

const LOOPBACK_HOST = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/i;

/**
 * Login tokens of the dashboard, as hashes. Bound beyond loopback with none configured,
 * errand makes one for `admin`, keeps only its hash in the state folder, and prints it
 * once.
 */
function loginTokens(
  config: ServerConfig,
  dir: string,
): { hashes: Map<string, string>; notice: string } {
  const d = config.dashboard;
  const hashes = new Map<string, string>();
  for (const [user, token] of Object.entries(d.users)) hashes.set(user, sha256Hex(token.reveal()));
  if (d.token) hashes.set('admin', sha256Hex(d.token.reveal()));
  const loginRequired = d.require_login ?? !LOOPBACK_HOST.test(d.host);
  if (hashes.size > 0 || !loginRequired) return { hashes, notice: '' };
  const file = join(dir, 'dashboard-token.sha256');
  if (existsSync(file)) {
    hashes.set('admin', readFileSync(file, 'utf8').trim());
    return {
      hashes,
      notice: `  login:  with the token printed when errand first started (lost? delete ${file} and restart)\n`,
    };
  }
  const token = randomBytes(24).toString('base64url');
  writeFileSync(file, `${sha256Hex(token)}\n`, { mode: 0o600 });
  hashes.set('admin', sha256Hex(token));
  return {
    hashes,
    notice: `  login:  ${token}   (shown once; errand keeps only its hash)\n`,
  };
}

/** `errand start`: runs the gateway in the foreground until SIGTERM or SIGINT. */
export async function startCommand(opts: { config?: string }): Promise<void> {
  const { config, result } = await requireConfig(opts.config);
  const log = createLogger();
  for (const w of result.warnings) log.warn({ fix: w.fix }, `${w.message}. Fix it with: ${w.fix}`);
  const dir = stateDir(config, process.env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // One errand per state folder, before anything in it is touched (docs/cli.md).
  const lock = await lockStateDir(dir);
  const store = openStore(config);
  let current = config;
  // One proxy and one CA for every task of this installation; all state under `dir`, all
  // that sandboxes mount in the sandbox folder.
  const executor = await SandboxExecutor.onHost({
    stateDir: dir,
    sandboxDir: sandboxDir(config, process.env),
    cacheDir: defaultCacheDir(process.env),
    imageMaxAgeMs: imageMaxAgeMs(config),
    config: () => current,
    agent: new ClaudeCodeRunner(),
    logger: log,
  });
  const gateway = new Gateway({
    store,
    executor,
    config,
    logger: log,
    channelFactory: (repoId, repo) => [
      ...(repo.web.enabled ? [new WebChannel(repoId, repo.web)] : []),
      ...(repo.slack
        ? [
            new SlackChannel(repoId, repo.slack, {
              logger: log,
              attachmentsDir: join(dir, 'attachments'),
            }),
          ]
        : []),
      ...(repo.email
        ? [
            new EmailChannel(repoId, repo.email, {
              logger: log,
              attachmentsDir: join(dir, 'attachments'),
            }),
          ]
        : []),
    ],
    commandCwd: result.path ? dirname(result.path) : process.cwd(),
  });
  await gateway.start();

  const login = loginTokens(config, dir);
  const dashboard = createDashboard({
    gateway,
    logger: log,
    controlToken: ensureControlToken(config),
    tokenHashes: login.hashes,
    version: VERSION,
    deliveriesDir: executor.deliveriesDir,
  });
  const api = dashboard.server;
  await new Promise<void>((resolve, reject) => {
    api.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new ErrandError(
          'usage',
          e.code === 'EADDRINUSE'
            ? `Port ${config.dashboard.port} on ${config.dashboard.host} is in use (is errand already running? try: errand status). Set dashboard.port in the config to use another.`
            : `Cannot listen on ${config.dashboard.host}:${config.dashboard.port}: ${e.message}`,
        ),
      ),
    );
    api.listen(config.dashboard.port, config.dashboard.host, resolve);
  });
  const addr = api.address() as AddressInfo;
  // Allowed (a container publishing the port on the host's loopback), never silent.
  const exposure = dashboardExposure(config.dashboard);
  if (exposure) log.warn({ fix: exposure.fix }, exposure.exposed);
  const repos = Object.keys(config.repos);
  log.info(
    {
      version: VERSION,
      config: result.source === 'file' ? result.path : 'embedded defaults',
      state: dir,
      api: `http://${addr.address}:${addr.port}`,
      repos,
    },
    'errand started',
  );
  // Listening before the banner says errand runs: until a listener exists, SIGTERM kills
  // the process outright, and whoever read the banner may send it at once.
  const stopped = new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting without waiting');
        process.exit(1);
      }
      stopping = true;
      log.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  process.stderr.write(
    `errand ${VERSION} is running on http://${addr.address}:${addr.port}\n` +
      `  config: ${result.source === 'file' ? result.path : 'embedded defaults (run `errand init` to write a config)'}\n` +
      `  state:  ${dir}\n` +
      `  repos:  ${repos.length ? repos.join(', ') : 'none (start errand inside a git checkout, or add repos to the config)'}\n` +
      login.notice +
      (exposure ? `  warning: ${exposure.exposed}; ${exposure.fix}\n` : '') +
      'Stop with Ctrl-C.\n',
  );

  // Old images go at start and once a day; through the driver, so the gateway knows no
  // images (docs/sandbox.md, "Images").
  const pruning = scheduleImagePrune({
    driver: executor.driver,
    config: () => current,
    logger: log,
  });

  const reload = async (why: string) => {
    const next = await loadServerConfig({
      path: result.path,
      env: process.env,
      cwd: process.cwd(),
    });
    if (next.status !== 'ok') {
      log.error(
        {
          why,
          problem:
            next.status === 'invalid' ? formatConfigIssues(next.issues) : `missing: ${next.path}`,
        },
        'config change ignored: the running config stays in effect',
      );
      return;
    }
    current = next.config;
    await gateway.applyConfig(next.config);
    log.info({ why }, 'config reloaded');
  };
  const watcher =
    result.source === 'file' && result.path
      ? watchConfig(result.path, () => void reload('file changed'))
      : undefined;
  process.on('SIGHUP', () => void reload('SIGHUP'));

  await stopped;
  watcher?.close();
  await gateway.shutdown();
  await pruning.stop();
  dashboard.close();
  await new Promise<void>((resolve) => api.close(() => resolve()));
  api.closeAllConnections();
  await store.close();
  lock.release();
  log.info('stopped');
  // Everything of errand's is closed; a library's leftover timer (the Slack client waits up
  // to 30 s for a close handshake) must not keep the service from exiting.
  setTimeout(() => process.exit(), 2000).unref();
}
