/**
 * How much of the dashboard one client may hold: time to send a request, body sizes,
 * connections, login attempts. docs/dashboard.md lists each value with its reason (a test
 * checks that the table matches these).
 */
export interface DashboardLimits {
  /** A request's headers must arrive within this (slowloris: headers a byte at a time). */
  headersTimeoutMs: number;
  /**
   * The whole request, headers and body, must arrive within this. It bounds receiving a
   * request only: a live stream (SSE) is a long response to a short GET and stays open.
   */
  requestTimeoutMs: number;
  /** How often Node looks for requests past those two bounds. */
  timeoutCheckMs: number;
  /** Open connections in all; more are closed at once. */
  maxConnections: number;
  /** Open connections from one address (IPv6: one /64); more are closed at once. */
  maxConnectionsPerAddress: number;
  /** Body of the login form, read before anyone is known. */
  maxLoginBodyBytes: number;
  /** Body of any other form or JSON request, read only once the sender is known. */
  maxBodyBytes: number;
  /**
   * Bytes of one live stream its client has not taken yet; past this the stream ends and
   * the page reconnects (a task page resumes after its last event).
   */
  maxLiveUnsentBytes: number;
  /** Wrong login tokens from one address within the window before logins from it are refused. */
  loginFailuresPerAddress: number;
  /** Wrong login tokens from all addresses within the window before every login is refused. */
  loginFailuresOverall: number;
  /** The sliding window login failures are counted in. */
  loginWindowMs: number;
}

export const DASHBOARD_LIMITS: Readonly<DashboardLimits> = Object.freeze({
  headersTimeoutMs: 10_000,
  // A 1 MiB task from a phone on a slow link (64 kB/s) takes 16 s.
  requestTimeoutMs: 30_000,
  timeoutCheckMs: 1_000,
  maxConnections: 256,
  // A browser keeps at most 6 connections to a site over HTTP/1.1; the rest is room for
  // scripts, and for a reverse proxy on the same machine carrying a small team's pages.
  maxConnectionsPerAddress: 64,
  maxLoginBodyBytes: 4 * 1024,
  // 100,000 characters (MAX_TEXT) of form-encoded UTF-8 fit in 1 MiB.
  maxBodyBytes: 1024 * 1024,
  // A few hundred events as pages show them; an event is clipped to tens of KB, except an
  // agent's text.
  maxLiveUnsentBytes: 4 * 1024 * 1024,
  loginFailuresPerAddress: 10,
  loginFailuresOverall: 100,
  loginWindowMs: 10 * 60_000,
});
