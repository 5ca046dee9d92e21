#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { defaultConfigPath } from '../config/index.ts';
import { describeError, ErrandError, type ErrandErrorCode } from '../util/errors.ts';
import { redactUrl } from '../util/url-credentials.ts';
import { CHECKS, formatChecks, runChecks } from './check.ts';
import { openExistingStore, requireConfig } from './context.ts';
import { EXIT, EXIT_CODES_HELP } from './exit-codes.ts';
import { initConfig } from './init.ts';
import { conversationShow, conversationsList, runningHealth, statusReport } from './inspect.ts';
import {
  SANDBOX_EXIT,
  type SandboxRunOptions,
  sandboxImage,
  sandboxRun,
  TRUSTED_COMMIT_OPTION,
} from './sandbox-run.ts';
import { installService, uninstallService } from './service.ts';
import { startCommand } from './start.ts';
import { deleteViaApi, stopViaApi } from './stop.ts';
import { VERSION } from './version.ts';

const CONFIG_FLAG = '-c, --config <path>';
const CONFIG_HELP = 'config file (default: $XDG_CONFIG_HOME/errand/errand.yaml)';
const TRUSTED_COMMIT_FLAG = `${TRUSTED_COMMIT_OPTION} <sha>`;
// A full id only: a branch or tag name is resolved through refs a sandboxed step could
// have rewritten, and an abbreviation could match an object the step added.
const TRUSTED_COMMIT_HELP =
  'the trusted commit: read .errand/ from this one (a full 40- or 64-hex id, not a name or abbreviation, so nothing in the checkout can change what it means); in CI the base commit (default: the default branch)';

const EXIT_BY_CODE: Partial<Record<ErrandErrorCode, number>> = {
  config_missing: EXIT.config,
  config_invalid: EXIT.config,
  secrets_file_insecure: EXIT.config,
  secret_missing: EXIT.config,
  env_missing: EXIT.config,
  usage: EXIT.usage,
  not_running: EXIT.notRunning,
  already_running: EXIT.failure,
  not_found: EXIT.notFound,
  sandbox_setup: SANDBOX_EXIT.setup,
};

// What a command prints may quote a git_url or an error that holds one: a URL's
// credentials are hidden (see redactUrl), in JSON output as in text.
function out(text: string): void {
  const shown = redactUrl(text);
  process.stdout.write(shown.endsWith('\n') ? shown : `${shown}\n`);
}

function program(): Command {
  const p = new Command('errand')
    .description(
      'Runs Claude Code in a sandbox for tasks sent by email, Slack or the web dashboard.',
    )
    .version(VERSION, '-V, --version')
    .helpCommand(true)
    .showSuggestionAfterError(true)
    .addHelpText('after', `\n${EXIT_CODES_HELP}\n\nDocs: docs/README.md`)
    .configureHelp({ sortSubcommands: false })
    .enablePositionalOptions();

  p.command('init')
    .description('write a commented starter config for this git checkout (and a secrets file)')
    .option(CONFIG_FLAG, CONFIG_HELP)
    .option('--force', 'overwrite an existing config')
    .addHelpText('after', `\n${EXIT_CODES_HELP}`)
    .action(async (o: { config?: string; force?: boolean }) => {
      const r = await initConfig({
        path: o.config ?? defaultConfigPath(process.env),
        force: o.force ?? false,
        cwd: process.cwd(),
      });
      for (const w of r.warnings) process.stderr.write(`errand: warning: ${redactUrl(w)}\n`);
      out(r.message);
    });

  p.command('check')
    .description('verify this machine and the config; print what to fix')
    .option(CONFIG_FLAG, CONFIG_HELP)
    .option('--json', 'print results as JSON')
    .addHelpText(
      'after',
      `\nChecks (those marked * decide the exit code):\n${CHECKS.map((c) => `  ${c.affectsExit ? '*' : ' '} ${c.title}`).join('\n')}\n\nExit codes:\n  0  every check marked * passed\n  1  a check marked * failed`,
    )
    .action(async (o: { config?: string; json?: boolean }) => {
      const results = await runChecks({
        configPath: o.config,
        env: process.env,
        cwd: process.cwd(),
      });
      out(o.json ? JSON.stringify(results, null, 2) : formatChecks(results));
      if (results.some((r) => r.affectsExit && r.status === 'fail'))
        process.exitCode = EXIT.failure;
    });

  p.command('start')
    .description('run errand in the foreground (dashboard, channels, tasks)')
    .option(CONFIG_FLAG, CONFIG_HELP)
    .addHelpText(
      'after',
      `\nWithout a config file errand runs on embedded defaults: state in\n$XDG_STATE_HOME/errand, dashboard on 127.0.0.1:5200, and the current git\ncheckout as its repository. SIGHUP or an edit of the config file reloads it.\n\n${EXIT_CODES_HELP}`,
    )
    .action(async (o: { config?: string }) => {
      await startCommand(o);
    });

  p.command('install-service')
    .description('install and enable a systemd user unit that runs `errand start`')
    .option(CONFIG_FLAG, CONFIG_HELP)
    .option('--dry-run', 'print the unit without writing or enabling it')
    .addHelpText('after', `\n${EXIT_CODES_HELP}`)
    .action(async (o: { config?: string; dryRun?: boolean }) => {
      const r = await installService({ env: process.env, configPath: o.config, dryRun: o.dryRun });
      out(o.dryRun ? r.unit : r.message);
    });

  p.command('uninstall-service')
    .description('disable and remove the systemd user unit')
    .option('--dry-run', 'say what would be removed')
    .addHelpText('after', `\n${EXIT_CODES_HELP}`)
    .action(async (o: { dryRun?: boolean }) => {
      out((await uninstallService({ env: process.env, dryRun: o.dryRun })).message);
    });

  p.command('status')
    .description('show channel health, conversations not deleted, running and queued tasks')
    .option(CONFIG_FLAG, CONFIG_HELP)
    .option('--json', 'print as JSON')
    .addHelpText('after', `\n${EXIT_CODES_HELP}`)
    .action(async (o: { config?: string; json?: boolean }) => {
      const { config } = await requireConfig(o.config);
      const store = openExistingStore(config);
      try {
        const health = await runningHealth(config);
        out(await statusReport(store, o.json ?? false, health));
        // The tasks the store holds are shown either way; the exit code says nobody answered.
        if (!health) process.exitCode = EXIT.notRunning;
      } finally {
        await store?.close();
      }
    });

  p.command('stop')
    .description('stop a running or queued task, or every task of a conversation')
    .argument('<id>', 'task id (t_…) or conversation id (c_…)')
    .option(CONFIG_FLAG, CONFIG_HELP)
    .addHelpText('after', `\n${EXIT_CODES_HELP}`)
    .action(async (id: string, o: { config?: string }) => {
      const { config } = await requireConfig(o.config);
      const stopped = await stopViaApi(config, id);
      if (stopped.length === 0) {
        out(`${id} has nothing running or queued; nothing was stopped.`);
        process.exitCode = EXIT.failure;
      } else {
        out(`Stopped ${stopped.join(', ')}.`);
      }
    });

  const conversations = p
    .command('conversations')
    .description('list, show or delete conversations');
  conversations
    .command('list')
    .description('list recent conversations')
    .option(CONFIG_FLAG, CONFIG_HELP)
    .option('--repo <id>', 'only this repository')
    .addOption(new Option('--limit <n>', 'how many').default(50).argParser(positiveInt))
    .option('--json', 'print as JSON')
    .addHelpText('after', `\n${EXIT_CODES_HELP}`)
    .action(async (o: { config?: string; repo?: string; limit: number; json?: boolean }) => {
      const { config } = await requireConfig(o.config);
      const store = openExistingStore(config);
      try {
        out(
          await conversationsList(store, { repo: o.repo, limit: o.limit, json: o.json ?? false }),
        );
      } finally {
        await store?.close();
      }
    });
  conversations
    .command('show')
    .description('show a conversation: messages, replies and tasks')
    .argument('<id>', 'conversation id (c_…)')
    .option(CONFIG_FLAG, CONFIG_HELP)
    .option('--json', 'print as JSON')
    .addHelpText('after', `\n${EXIT_CODES_HELP}`)
    .action(async (id: string, o: { config?: string; json?: boolean }) => {
      const { config } = await requireConfig(o.config);
      const store = openExistingStore(config);
      try {
        out(await conversationShow(store, id, o.json ?? false));
      } finally {
        await store?.close();
      }
    });

  conversations
    .command('delete')
    .description('delete a conversation now: its folders, files, messages and tasks')
    .argument('<id>', 'conversation id (c_…)')
    .option(CONFIG_FLAG, CONFIG_HELP)
    .addHelpText(
      'after',
      `\nAsks the running errand to delete it as retention would (execution.retention_days).\nA conversation with tasks queued or running is refused: stop them first (errand stop ID).\nWhen its folders cannot be removed it is kept, shown in errand status and on the\ndashboard, and tried again at every retention sweep; the service log names what is left.\n\n${EXIT_CODES_HELP}`,
    )
    .action(async (id: string, o: { config?: string }) => {
      const { config } = await requireConfig(o.config);
      await deleteViaApi(config, id);
      out(`Deleted ${id}.`);
    });

  const sandbox = p
    .command('sandbox')
    .description('run commands in the sandbox (for CI) and manage its image')
    .enablePositionalOptions();
  sandbox
    .command('run')
    .description('run COMMAND in the sandbox with the current folder at /workspace')
    .usage('[options] -- COMMAND [ARG]...')
    .option(TRUSTED_COMMIT_FLAG, TRUSTED_COMMIT_HELP)
    .option('--image <image>', 'use this local image')
    .option(
      '--containerfile <path>',
      'build the image from this Containerfile (its folder is the context)',
    )
    .option(
      '--config <path>',
      'sandbox settings (default: .errand/sandbox.yaml of the trusted commit)',
    )
    .option(
      '--allowlist <path>',
      'network allowlist (default: .errand/network-allowlist.yaml of the trusted commit)',
    )
    .option('--mount <src:dst[:ro]>', 'also mount a host path (repeatable)', collect, [])
    .option(
      '--env <name[=value]>',
      'set a variable; NAME alone copies it from here (repeatable)',
      collect,
      [],
    )
    .option('--timeout <seconds>', 'kill the command after this long', positiveInt)
    .option('--network-log <path>', 'append one JSON line per request to this file')
    .option(
      '--resolve <host=addr[:port]>',
      'send HOST to this address, private ones included (repeatable)',
      collect,
      [],
    )
    .option('--upstream-ca <file>', 'also trust this CA for upstream servers')
    .argument('<command...>', 'the command and its arguments, after --')
    .passThroughOptions()
    .addHelpText(
      'after',
      `\nWithout --image or --containerfile the image is built from .errand/container/ of\n${TRUSTED_COMMIT_OPTION}, else of the current checkout's default branch (origin/HEAD, else\nmain or master), so a pull request cannot change its own sandbox. The checkout's .git\nis mounted read-only. Outside a git checkout .errand/ is read from the working folder.\nstdout and stderr pass through unchanged.\n\nExit codes:\n  N    the command's own exit status\n  124  the command ran past its timeout and was killed\n  125  errand could not set up the sandbox (a one-line reason is on stderr)`,
    )
    .action(
      async (command: string[], o: Omit<SandboxRunOptions, 'command' | 'cwd' | 'processEnv'>) => {
        process.exitCode = await sandboxRun({
          ...o,
          command,
          cwd: process.cwd(),
          processEnv: process.env,
        });
      },
    );
  sandbox
    .command('image')
    .description('hash, save or load the sandbox image of .errand/container/ (for CI caches)')
    .argument('<action>', 'hash | save | load')
    .argument('[dir]', 'folder to save to or load from')
    .option(TRUSTED_COMMIT_FLAG, TRUSTED_COMMIT_HELP)
    .addHelpText(
      'after',
      '\nExamples:\n  errand sandbox image hash          # a cache key\n  errand sandbox image save .cache   # writes .cache/HASH.tar\n  errand sandbox image load .cache\n\nExit codes:\n  0    done\n  125  errand could not build, save or load the image',
    )
    .action(async (action: string, dir: string | undefined, o: { trustedCommit?: string }) => {
      if (action !== 'hash' && action !== 'save' && action !== 'load') {
        throw new ErrandError(
          'sandbox_setup',
          `unknown action "${action}": use hash, save or load`,
        );
      }
      out(await sandboxImage(action, dir, process.cwd(), process.env, o));
    });

  // Every command exits 2 on a usage error instead of commander's default 1.
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(p)) c.exitOverride();
  return p;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new ErrandError('usage', `expected a whole number of at least 1, not "${value}"`);
  return n;
}

/**
 * Runs `errand ARGV` (without the node and script words) and returns the exit code. The
 * command's entry is errand.ts, which checks the Node version before it loads this.
 */
export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version exit 0; commander already printed the problem otherwise. In
      // `sandbox run` and `sandbox image` 2 could be the command's own status, so errors
      // there are 125; `errand sandbox` alone or with an unknown subcommand is a usage error.
      if (e.exitCode === 0) return EXIT.ok;
      return sandboxSubcommand(argv) ? SANDBOX_EXIT.setup : EXIT.usage;
    }
    if (e instanceof ErrandError) {
      process.stderr.write(`errand: ${redactUrl(e.message)}\n`);
      // In `sandbox` commands 1 could be the command's own status: a trusted file that
      // cannot be read (`trusted_file_invalid`, `git_failed`) is a setup failure too.
      return EXIT_BY_CODE[e.code] ?? (sandboxSubcommand(argv) ? SANDBOX_EXIT.setup : EXIT.failure);
    }
    process.stderr.write(
      `errand: unexpected error: ${describeError(e)}\nPlease report this with the command you ran.\n`,
    );
    if (process.env.ERRAND_DEBUG) process.stderr.write(`${(e as Error)?.stack ?? ''}\n`);
    return sandboxSubcommand(argv) ? SANDBOX_EXIT.setup : EXIT.failure;
  }
}

/** `sandbox run` or `sandbox image`, whose exit codes below 124 belong to what they run. */
function sandboxSubcommand(argv: string[]): boolean {
  return argv[0] === 'sandbox' && (argv[1] === 'run' || argv[1] === 'image');
}

// Run when executed directly (a systemd unit written by an older errand names this file),
// not when imported.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
