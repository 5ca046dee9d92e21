/**
 * Who may use the dashboard. On a loopback address nobody logs in (the person at the
 * machine is `local`). Bound anywhere else, a person logs in with a token; only its hash
 * is kept. Every state-changing request from a browser carries a CSRF token bound to its
 * session, and is refused when it comes from another site. Scripts use the control token
 * as a Bearer header instead, which a browser never attaches by itself.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export interface Identity {
  user: string;
  /** The token forms must send back as `_csrf`. */
  csrf: string;
  via: 'local' | 'session' | 'bearer';
  sessionId?: string;
}

export interface AccessOptions {
  /** The address the dashboard is bound to. */
  host: string;
  /** Ask for a login even on loopback; default: only beyond loopback. */
  requireLogin?: boolean;
  /** sha256 (hex) of each user's login token. */
  tokenHashes: Map<string, string>;
  /** Bearer token for scripts and the CLI. */
  controlToken: string;
  /** Mark the session cookie Secure (the dashboard is reached over HTTPS). */
  secureCookies: boolean;
  sessionHours?: number;
}

export const SESSION_COOKIE = 'errand_session';
const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/i;

/** Whether `host` (dashboard.host) is reachable only from this machine. */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK.test(host);
}

export function sha256Hex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

export class Access {
  readonly loginRequired: boolean;
  readonly secureCookies: boolean;
  readonly #o: AccessOptions;
  readonly #secret = randomBytes(32);
  readonly #sessions = new Map<string, { user: string; csrf: string; expires: number }>();

  constructor(o: AccessOptions) {
    this.#o = o;
    this.loginRequired = o.requireLogin ?? !isLoopbackHost(o.host);
    this.secureCookies = o.secureCookies;
  }

  get sessionMs(): number {
    return (this.#o.sessionHours ?? 12) * 3_600_000;
  }

  /** The identity of a request, or undefined when it must log in first. */
  identify(cookie: string | undefined, authorization: string | undefined): Identity | undefined {
    const bearer = /^Bearer (.+)$/.exec(authorization ?? '')?.[1];
    if (bearer !== undefined) {
      return equal(sha256Hex(bearer), sha256Hex(this.#o.controlToken))
        ? { user: 'operator', csrf: '', via: 'bearer' }
        : undefined;
    }
    if (!this.loginRequired) return { user: 'local', csrf: this.#mac('local'), via: 'local' };
    const s = cookie ? this.#sessions.get(cookie) : undefined;
    if (!s) return undefined;
    if (s.expires < Date.now()) {
      this.#sessions.delete(cookie!);
      return undefined;
    }
    return { user: s.user, csrf: s.csrf, via: 'session', sessionId: cookie };
  }

  /** A new session for the user whose token this is; undefined for an unknown token. */
  login(token: string): { sessionId: string; user: string } | undefined {
    const hash = sha256Hex(token);
    let user: string | undefined;
    for (const [name, h] of this.#o.tokenHashes) if (equal(hash, h)) user = name;
    if (!user) return undefined;
    const sessionId = randomBytes(32).toString('base64url');
    this.#sessions.set(sessionId, {
      user,
      csrf: randomBytes(24).toString('base64url'),
      expires: Date.now() + this.sessionMs,
    });
    return { sessionId, user };
  }

  logout(sessionId: string | undefined): void {
    if (sessionId) this.#sessions.delete(sessionId);
  }

  /**
   * Whether a state-changing request may proceed: Bearer requests always (no cookie is
   * involved); browser requests only with their CSRF token and not from another site.
   */
  allowsChange(id: Identity, submitted: string | undefined, fetchSite: string | undefined) {
    if (id.via === 'bearer') return true;
    if (fromAnotherSite(fetchSite)) return false;
    return submitted !== undefined && equal(submitted, id.csrf);
  }

  #mac(what: string): string {
    return createHmac('sha256', this.#secret).update(what).digest('base64url');
  }
}

/**
 * Whether the browser marked the request as sent by a page of another site
 * (`Sec-Fetch-Site`; another port of the same host is `same-site`). Undefined: no browser
 * said so (a script, or a browser too old to send it).
 */
export function fromAnotherSite(fetchSite: string | undefined): boolean {
  return fetchSite === 'cross-site' || fetchSite === 'same-site';
}

function equal(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
