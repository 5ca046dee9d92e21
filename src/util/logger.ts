import { pino } from 'pino';
import { redactUrl } from './url-credentials.ts';

export type Logger = pino.Logger;

/**
 * The service log: JSON lines on stderr (journald keeps them under systemd). Config
 * credentials are Secret objects and serialize as `[secret]`; the redact paths below catch
 * credentials that arrive as plain fields from elsewhere, and every line is written through
 * redactUrl, so a URL's credentials are hidden in whatever field quotes it (an error from
 * git, a mail server or the Slack client; a library's own message).
 */
export function createLogger(opts: { level?: string; destination?: number | string } = {}): Logger {
  const out = pino.destination({ dest: opts.destination ?? 2, sync: true });
  return pino(
    {
      level: opts.level ?? process.env.ERRAND_LOG_LEVEL ?? 'info',
      base: undefined,
      redact: {
        paths: ['*.password', '*.token', '*.api_key', '*.secret', '*.authorization'],
        censor: '[secret]',
      },
    },
    // A JSON line is safe to redact as text: a match stops at a quote or a backslash.
    { write: (line: string) => out.write(redactUrl(line)) },
  );
}

/** A logger that drops everything, for tests and one-shot commands. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
