/** errand's exit codes, documented in `errand --help` and docs/cli.md. */
export const EXIT = {
  ok: 0,
  /**
   * The command ran and found a problem (a failed check, a failed stop, an errand already
   * running on the state folder `start` was given, a conversation that could not be
   * deleted or has tasks queued or running).
   */
  failure: 1,
  /** Unknown command, option or argument. */
  usage: 2,
  /** The config file is missing (when named) or invalid. */
  config: 3,
  /** The command needs a running errand and none answered. */
  notRunning: 4,
  /** The task or conversation named does not exist. */
  notFound: 5,
} as const;

export const EXIT_CODES_HELP = `Exit codes:
  0  success
  1  the command ran and found a problem (failed check, failed stop,
     errand already running on the state folder, a conversation not
     deleted: its folders could not be, or it has tasks queued or running)
  2  usage error: unknown command, option or argument
  3  the config file is missing or invalid
  4  errand is not running (commands that talk to it)
  5  no such task or conversation`;
