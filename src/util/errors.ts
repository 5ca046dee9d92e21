import { redactUrl } from './url-credentials.ts';

/**
 * Faults a user can hit carry a stable snake_case `code` that callers branch on, and a
 * message that says what happened and what to do next. Expected outcomes are values, not
 * errors; an ErrandError reaches the user as its message alone, never a stack trace.
 */
export type ErrandErrorCode =
  | 'config_missing'
  | 'config_invalid'
  | 'secrets_file_insecure'
  | 'secret_missing'
  | 'env_missing'
  | 'store_failed'
  | 'not_found'
  | 'not_running'
  | 'already_running'
  | 'usage'
  | 'check_failed'
  | 'service_failed'
  | 'git_failed'
  | 'sandbox_setup'
  | 'trusted_file_invalid'
  /** A conversation with tasks queued or running cannot be deleted: stop them first. */
  | 'conversation_busy'
  /** A conversation's folders could not be deleted; it is kept, tried again at each sweep. */
  | 'not_deleted'
  | 'internal';

export class ErrandError extends Error {
  readonly code: ErrandErrorCode;
  constructor(code: ErrandErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ErrandError';
    this.code = code;
  }
}

export function isErrandError(e: unknown): e is ErrandError {
  return e instanceof ErrandError;
}

/**
 * A one-line description of an unknown error, for logs and failure replies. Credentials in
 * URLs it quotes are hidden (an HTTP client's message may carry the URL it was given).
 */
export function describeError(e: unknown): string {
  return redactUrl(e instanceof Error ? e.message || e.name : String(e));
}
