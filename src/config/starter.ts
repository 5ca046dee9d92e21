/** The one repository the starter config names. */
export interface StarterRepo {
  /** The repository id: the checkout folder's name (repoIdOfFolder). */
  id: string;
  /**
   * What `git_url:` says, as YAML: a quoted URL or path, or a `!secret NAME` reference
   * when the URL holds a credential.
   */
  gitUrl: string;
}

/** The config `errand init` writes, for the repository of the checkout it ran in. */
export function starterConfig(repo: StarterRepo): string {
  // Replacer functions: a `$&` in a URL is text, not a replacement pattern.
  return STARTER.replace('REPO_ID', () => repo.id).replace('REPO_GIT_URL', () => repo.gitUrl);
}

const STARTER = `# errand server config. Reference: docs/configuration.md
# Values can come from the environment (!env NAME, also read from .env beside this file)
# or from secrets.env beside this file (!secret NAME; keep it chmod 600).

execution:
  max_concurrent: 4            # tasks running at once, over all repositories
  shutdown_grace_seconds: 30   # time running tasks get to finish on shutdown
  retention_days: 30           # idle conversations are deleted after this many days
  hold_sandbox: true           # start the next tasks' sandboxes ahead of time (docs/sandbox.md)

dashboard:
  host: 127.0.0.1              # anything else requires a login token (docs/dashboard.md)
  port: 5200
  # base_url: https://errand.example.com

repos:
  REPO_ID:
    git_url: REPO_GIT_URL   # a URL or an absolute local path
    # default_branch: main     # detected when absent
    model: claude-sonnet-4-5
    # usage_footer: true       # cost, duration, turns and tokens under each reply
    web:
      enabled: true
    # agent:
    #   api_key: !secret ANTHROPIC_API_KEY
    # limits: { timeout_seconds: 3600, memory: 4g, cpus: 2, pids: 1024 }
    # email:
    #   address: errand@example.com
    #   imap: { host: imap.example.com, port: 993, security: tls, user: errand@example.com, password: !secret IMAP_PASSWORD }
    #   smtp: { host: smtp.example.com, port: 465, security: tls, user: errand@example.com, password: !secret SMTP_PASSWORD }
    #   authorized_senders: [alice@example.com]
    #   trusted_authserv_id: mx.example.com   # or verify_dkim: true (docs/email-setup.md)
    # slack:                   # docs/slack-setup.md
    #   app_token: !secret SLACK_APP_TOKEN
    #   bot_token: !secret SLACK_BOT_TOKEN
    #   authorized: { workspace_members: true }
    # masked_secrets:
    #   GH_TOKEN: { value: !secret GH_TOKEN, hosts: [github.com, api.github.com] }
    # schedules:
    #   weekly-deps:
    #     cron: "0 6 * * 1"
    #     timezone: Europe/Berlin
    #     prompt: Check for outdated dependencies and open a pull request.
    #     channel: web
`;
