import { Cron } from 'croner';
import { z } from 'zod';
import { Secret } from '../util/secret.ts';
import { SERVER_TOOL_KINDS } from '../util/server-tools.ts';

/**
 * The server config file (errand.yaml), one schema. Every object is strict: a misspelt key
 * is an error, never a silently ignored setting. Keys are snake_case.
 *
 * Scope, i.e. when a change takes effect while errand runs:
 * - `execution.*`: at once (a lower max_concurrent applies to tasks not yet started).
 * - `dashboard.*`: at the next start.
 * - `repos.<id>.*`: once that repository has nothing running or queued.
 */

/** A credential: a string in YAML, a Secret after parsing, so it cannot be logged by accident. */
const secret = (what: string) =>
  z
    .union([z.string().min(1, `${what} must not be empty`), z.instanceof(Secret)])
    .transform((v) => (v instanceof Secret ? v : new Secret(v)))
    .describe(`${what} (use !secret NAME or !env NAME)`);

/** Shortest login token accepted: a guess at 20 random characters never comes right. */
export const MIN_LOGIN_TOKEN = 20;

/** A dashboard login token: a secret long enough that the login budget is not its only guard. */
const loginToken = (what: string, more = '') =>
  secret(what)
    .refine(
      (v) => v.length >= MIN_LOGIN_TOKEN,
      `a login token of at least ${MIN_LOGIN_TOKEN} characters, so it cannot be guessed (make one with: openssl rand -base64 24)`,
    )
    .describe(
      `${what}, at least ${MIN_LOGIN_TOKEN} characters${more} (use !secret NAME or !env NAME)`,
    );

const envName = z
  .string()
  .regex(/^[A-Z_][A-Z0-9_]*$/, 'an upper-case environment variable name like GH_TOKEN');
const idPattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const hostName = z
  .string()
  .regex(
    /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/,
    'a host name like api.github.com or *.example.com',
  );
const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|::1|\[::1\])$/i;

const mailServer = z
  .object({
    host: z.string().min(1).describe('server host name'),
    port: z.number().int().min(1).max(65535).describe('server port'),
    security: z
      .enum(['tls', 'starttls', 'none'])
      .describe('tls (implicit TLS), starttls, or none (loopback only)'),
    user: z.string().min(1).describe('login name'),
    password: secret('login password or app password'),
  })
  .strict();

const emailChannel = z
  .object({
    address: z.email().describe("the repository's mailbox; replies come from it"),
    imap: mailServer
      .extend({ folder: z.string().min(1).default('INBOX').describe('folder to watch') })
      .strict()
      .describe('where mail is received'),
    smtp: mailServer.describe('where replies are sent'),
    authorized_senders: z
      .array(
        z
          .string()
          .regex(
            /^(\*@[^@\s]+|[^@\s*]+@[^@\s*]+)$/,
            'an address like alice@example.com or *@example.com',
          ),
      )
      .min(1, 'list at least one sender')
      .describe('who may send tasks: exact addresses or *@domain'),
    trusted_authserv_id: z
      .string()
      .min(1)
      .optional()
      .describe('trust the first Authentication-Results header from this server'),
    verify_dkim: z.boolean().default(false).describe('verify DKIM and DMARC in errand itself'),
    dns_servers: z
      .array(z.string())
      .default([])
      .describe('resolvers for DKIM verification; empty: the system resolver'),
    poll_seconds: z
      .number()
      .int()
      .min(5)
      .max(3600)
      .default(60)
      .describe('polling interval when IDLE is unavailable'),
    max_message_mb: z
      .number()
      .positive()
      .max(100)
      .default(25)
      .describe('larger mail is not read (the sender gets a notice); also caps attachments sent'),
  })
  .strict()
  .superRefine((e, ctx) => {
    if (!e.trusted_authserv_id && !e.verify_dkim) {
      ctx.addIssue({
        code: 'custom',
        message:
          'set trusted_authserv_id or verify_dkim: true, so errand can tell forged mail from real',
        path: ['trusted_authserv_id'],
      });
    }
    for (const which of ['imap', 'smtp'] as const) {
      if (e[which].security === 'none' && !LOOPBACK.test(e[which].host)) {
        ctx.addIssue({
          code: 'custom',
          message: 'security: none is allowed only for a loopback host; use tls or starttls',
          path: [which, 'security'],
        });
      }
    }
  });

const slackChannel = z
  .object({
    app_token: secret('Slack app-level token (xapp-…)').refine(
      (s) => s.reveal().startsWith('xapp-'),
      'an app-level token starting with xapp-',
    ),
    bot_token: secret('Slack bot token (xoxb-…)').refine(
      (s) => s.reveal().startsWith('xoxb-'),
      'a bot token starting with xoxb-',
    ),
    authorized: z
      .object({
        workspace_members: z
          .boolean()
          .default(false)
          .describe('every full member of the workspace'),
        user_groups: z.array(z.string()).default([]).describe('members of these user group ids'),
        users: z.array(z.string()).default([]).describe('these user ids'),
      })
      .strict()
      .refine(
        (a) => a.workspace_members || a.user_groups.length > 0 || a.users.length > 0,
        'authorize someone: workspace_members, user_groups or users',
      )
      .describe('who may use the bot; bots, guests and other workspaces never may'),
    channels: z
      .array(z.string())
      .default([])
      .describe('channel ids the bot answers in; empty: any'),
  })
  .strict();

const webChannel = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .describe('offer the dashboard form and reply box for this repository'),
    authorized_users: z
      .array(z.string())
      .default([])
      .describe('dashboard users who may start tasks; empty: anyone who can log in'),
  })
  .strict();

const schedule = z
  .object({
    cron: z.string().describe('cron expression: 5 fields, or 6 with seconds first'),
    timezone: z.string().default('UTC').describe('IANA time zone for the cron expression'),
    prompt: z.string().min(1).optional().describe('the task text'),
    command: z
      .string()
      .min(1)
      .optional()
      .describe('a shell command whose output is the task text; empty output: nothing to do'),
    channel: z.enum(['email', 'slack', 'web']).describe('where the new thread is opened'),
    to: z
      .string()
      .optional()
      .describe('recipient: an email address or Slack channel id; required for email and slack'),
  })
  .strict()
  .superRefine((s, ctx) => {
    let zoneOk = true;
    try {
      new Intl.DateTimeFormat('en', { timeZone: s.timezone });
    } catch {
      zoneOk = false;
      ctx.addIssue({
        code: 'custom',
        message: 'an IANA time zone like Europe/Berlin or UTC',
        path: ['timezone'],
      });
    }
    try {
      new Cron(s.cron, { paused: true, timezone: zoneOk ? s.timezone : undefined }).stop();
    } catch (e) {
      ctx.addIssue({
        code: 'custom',
        message: `a valid cron expression (${(e as Error).message})`,
        path: ['cron'],
      });
    }
    if ((s.prompt === undefined) === (s.command === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message: 'exactly one of prompt and command',
        path: s.prompt === undefined ? ['prompt'] : ['command'],
      });
    }
    if (s.channel !== 'web' && !s.to) {
      ctx.addIssue({
        code: 'custom',
        message: `a recipient for the ${s.channel} channel`,
        path: ['to'],
      });
    }
  });

const limits = z
  .object({
    timeout_seconds: z
      .number()
      .int()
      .min(1)
      .max(86_400)
      .default(3600)
      .describe('wall-clock limit of one task'),
    memory: z
      .string()
      .regex(/^\d+[bkmg]?$/i, 'a size like 512m or 4g')
      .default('4g')
      .describe('container memory limit'),
    cpus: z.number().positive().max(512).default(2).describe('container CPU limit'),
    pids: z.number().int().min(16).max(1_000_000).default(1024).describe('container process limit'),
  })
  .strict();

const repo = z
  .object({
    git_url: z
      .string()
      .min(1)
      .describe('where the repository lives: a URL or an absolute local path'),
    default_branch: z.string().min(1).optional().describe('detected from the remote when absent'),
    model: z.string().min(1).default('claude-sonnet-4-5').describe('model for new conversations'),
    usage_footer: z
      .boolean()
      .default(false)
      .describe('show cost, duration, turns and tokens under each reply'),
    email: emailChannel.optional().describe('email channel'),
    slack: slackChannel.optional().describe('Slack channel'),
    web: webChannel.default({ enabled: true, authorized_users: [] }).describe('web channel'),
    limits: limits
      .default({ timeout_seconds: 3600, memory: '4g', cpus: 2, pids: 1024 })
      .describe('sandbox limits'),
    schedules: z
      .record(z.string().regex(idPattern, 'a name of letters, digits, ., _ and -'), schedule)
      .default({})
      .describe('scheduled tasks by name'),
    network: z
      .object({
        sandbox: z
          .boolean()
          .default(true)
          .describe('false turns the network sandbox off (logged as a warning at every task)'),
        resolve: z
          .record(
            hostName,
            z
              .string()
              .regex(
                /^(\[[0-9A-Fa-f:.]+\]|[0-9A-Za-z.-]+)(:\d{1,5})?$/,
                'an address like 10.1.2.3 or 10.1.2.3:8443',
              ),
          )
          .default({})
          .describe('explicit upstream addresses; the only way to reach private ranges'),
        cleartext_credentials: z
          .array(hostName)
          .default([])
          .describe(
            'hosts mapped in network.resolve that may receive real credentials over plain http; every other host gets them over https only',
          ),
        upstream_ca: z
          .string()
          .min(1)
          .optional()
          .describe('file with an extra CA trusted for upstreams'),
      })
      .strict()
      .superRefine((n, ctx) => {
        // Cleartext crosses every network between errand and the host: only to a host the
        // operator mapped, one on its own network, and only when named.
        const mapped = new Set(Object.keys(n.resolve).map((h) => h.toLowerCase()));
        n.cleartext_credentials.forEach((h, i) => {
          if (!mapped.has(h.toLowerCase()))
            ctx.addIssue({
              code: 'custom',
              message: 'a host mapped in network.resolve',
              path: ['cleartext_credentials', i],
            });
        });
      })
      .default({ sandbox: true, resolve: {}, cleartext_credentials: [] })
      .describe('network sandbox settings'),
    masked_secrets: z
      .record(
        envName,
        z
          .object({
            value: secret('the real credential'),
            hosts: z
              .array(hostName)
              .min(1, 'list at least one host')
              .describe('hosts where the surrogate is swapped for the real value'),
            headers: z
              .array(z.string().min(1))
              .default(['Authorization'])
              .describe('header name globs carrying the credential'),
          })
          .strict(),
      )
      .default({})
      .describe('credentials the container sees only as surrogates'),
    aws_credentials: z
      .record(
        envName,
        z
          .object({
            access_key_id: secret('AWS access key id'),
            secret_access_key: secret('AWS secret access key'),
            session_token: secret('AWS session token').optional(),
            hosts: z
              .array(hostName)
              .min(1, 'list at least one host')
              .describe('hosts whose requests are re-signed with the real key'),
          })
          .strict(),
      )
      .default({})
      .describe('AWS credentials; requests are re-signed by the proxy'),
    env: z
      .record(envName, z.string())
      .default({})
      .describe('plain environment variables for the container'),
    agent: z
      .object({
        api_key: secret('Anthropic API key').optional(),
        oauth_token: secret('Claude Code OAuth token').optional(),
        api_host: z
          .string()
          .min(1)
          .default('api.anthropic.com')
          .describe('where the CLI sends its requests'),
        server_tools: z
          .array(z.enum(SERVER_TOOL_KINDS))
          .default([])
          .describe(
            'tools the model provider runs itself, outside the proxy, that the agent may use; web_search and web_fetch are held to the hosts the allowlist admits for GET on every path (docs/security.md, "The model API")',
          ),
        effort: z.enum(['low', 'medium', 'high']).optional().describe('reasoning effort'),
        claude_code_version: z
          .string()
          .regex(/^\d+\.\d+\.\d+$/, 'a version like 2.1.330')
          .optional()
          .describe('pin the Claude Code CLI version'),
      })
      .strict()
      .refine((a) => !(a.api_key && a.oauth_token), 'set api_key or oauth_token, not both')
      .default({ api_host: 'api.anthropic.com', server_tools: [] })
      .describe('the Claude Code CLI'),
    sandbox: z
      .object({
        image_max_age_hours: z
          .number()
          .int()
          .min(1)
          .max(8760)
          .default(168)
          .describe('rebuild images older than this'),
      })
      .strict()
      .default({ image_max_age_hours: 168 })
      .describe('image settings'),
  })
  .strict()
  .superRefine((r, ctx) => {
    for (const [name, s] of Object.entries(r.schedules)) {
      const configured = s.channel === 'web' ? r.web.enabled : r[s.channel] !== undefined;
      if (!configured) {
        ctx.addIssue({
          code: 'custom',
          message: `the ${s.channel} channel configured for this repository`,
          path: ['schedules', name, 'channel'],
        });
      }
    }
  });

export const serverConfigSchema = z
  .object({
    secrets_file: z
      .string()
      .min(1)
      .optional()
      .describe('file for !secret values, relative to the config; default secrets.env'),
    execution: z
      .object({
        max_concurrent: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(4)
          .describe('tasks running at once, over all repositories'),
        deliveries_in_flight: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(8)
          .describe(
            'replies and notices each channel of each repository sends at once; the rest wait, in order per conversation',
          ),
        shutdown_grace_seconds: z
          .number()
          .int()
          .min(0)
          .max(86_400)
          .default(30)
          .describe('time running tasks get to finish on shutdown'),
        retention_days: z
          .number()
          .int()
          .min(1)
          .max(36_500)
          .default(30)
          .describe('idle conversations are deleted after this many days'),
        state_dir: z
          .string()
          .min(1)
          .optional()
          .describe('state folder; default $XDG_STATE_HOME/errand'),
        sandbox_dir: z
          .string()
          .min(1)
          .optional()
          .describe(
            "folder of what sandboxes mount (conversation folders, errand's files and tools), apart from the state folder so a sandbox never learns where that is; default $XDG_DATA_HOME/errand/sandboxes",
          ),
        hold_sandbox: z
          .boolean()
          .default(true)
          .describe(
            "once a task has ended, start the sandboxes of its conversation's next task and of the repository's next new conversation, so they do not wait for podman (each an idle container and network helper, about 25 MB of memory of its own, for up to 10 minutes; at most max_concurrent for conversations)",
          ),
      })
      .strict()
      .default({
        max_concurrent: 4,
        deliveries_in_flight: 8,
        shutdown_grace_seconds: 30,
        retention_days: 30,
        hold_sandbox: true,
      })
      .describe('task execution'),
    sandbox: z
      .object({
        image_prune: z
          .boolean()
          .default(true)
          .describe(
            'at start and once a day, remove the sandbox images this installation built more than twice the smallest image_max_age_hours of its repositories ago (an image a container uses stays)',
          ),
      })
      .strict()
      .default({ image_prune: true })
      .describe('sandbox images of this installation'),
    dashboard: z
      .object({
        host: z
          .string()
          .min(1)
          .default('127.0.0.1')
          .describe('address the dashboard and API bind to'),
        port: z.number().int().min(1).max(65535).default(5200).describe('dashboard port'),
        base_url: z.url().optional().describe('public URL of the dashboard, for links in replies'),
        token: loginToken(
          'login token of the user `admin`',
          '; asked for beyond loopback or with require_login; default: one errand start makes and prints once',
        ).optional(),
        require_login: z
          .boolean()
          .optional()
          .describe(
            'ask for a login token; default: only when bound beyond loopback (set true on a shared machine)',
          ),
        users: z
          .record(
            z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/, 'a user name'),
            loginToken('login token'),
          )
          .default({})
          .describe(
            `more dashboard users, each with a login token of their own (at least ${MIN_LOGIN_TOKEN} characters)`,
          ),
      })
      .strict()
      .default({ host: '127.0.0.1', port: 5200, users: {} })
      .describe('dashboard and API'),
    repos: z
      .record(
        z.string().regex(idPattern, 'a repository id of letters, digits, ., _ and - (at most 64)'),
        repo,
      )
      .default({})
      .describe('repositories by id'),
  })
  .strict()
  .superRefine((c, ctx) => {
    const seen = new Map<string, string>();
    for (const [id, r] of Object.entries(c.repos)) {
      const address = r.email?.address.toLowerCase();
      if (!address) continue;
      const other = seen.get(address);
      if (other) {
        ctx.addIssue({
          code: 'custom',
          message: `a mailbox of its own (repository ${other} uses the same address)`,
          path: ['repos', id, 'email', 'address'],
        });
      }
      seen.set(address, id);
    }
  });

export type ServerConfig = z.infer<typeof serverConfigSchema>;
export type RepoConfig = ServerConfig['repos'][string];

/** Maps (by key path) whose every value is a credential: the values never appear in messages. */
export const SECRET_MAPS = new Set(['dashboard.users']);

/** Key paths whose values are credentials: their values never appear in messages. */
export const SECRET_KEYS = new Set([
  'password',
  'app_token',
  'bot_token',
  'token',
  'value',
  'access_key_id',
  'secret_access_key',
  'session_token',
  'api_key',
  'oauth_token',
]);
