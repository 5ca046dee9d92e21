import { pino } from 'pino';

export type Logger = pino.Logger;

/**
 * The service log: JSON lines on stderr (journald keeps them under systemd). Config
 * credentials are Secret objects and serialize as `[secret]`; the redact paths below catch
 * credentials that arrive as plain fields from elsewhere.
 */
export function createLogger(opts: { level?: string; destination?: number | string } = {}): Logger {
  return pino(
    {
      level: opts.level ?? process.env.ERRAND_LOG_LEVEL ?? 'info',
      base: undefined,
      redact: {
        paths: ['*.password', '*.token', '*.api_key', '*.secret', '*.authorization'],
        censor: '[secret]',
      },
    },
    pino.destination({ dest: opts.destination ?? 2, sync: true }),
  );
}

/** A logger that drops everything, for tests and one-shot commands. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
