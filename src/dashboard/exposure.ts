/**
 * A dashboard bound beyond loopback with `require_login: false` serves everything to
 * whoever reaches it. That is allowed, for a container whose port is published only on
 * the host's loopback, but never silent: `errand start` and `errand check` say what is
 * exposed and how to close it.
 */
import { isLoopbackHost } from './access.ts';

export interface Exposure {
  /** What is open, and to whom. */
  exposed: string;
  /** How to close it. */
  fix: string;
}

/** The exposure of a dashboard config; undefined when a login is needed or it is on loopback. */
export function dashboardExposure(d: {
  host: string;
  port: number;
  require_login?: boolean;
}): Exposure | undefined {
  if (d.require_login !== false || isLoopbackHost(d.host)) return undefined;
  const where = d.host.includes(':') ? `[${d.host}]:${d.port}` : `${d.host}:${d.port}`;
  return {
    exposed: `the dashboard on ${where} needs no login: anyone who can reach this machine can start and stop tasks and read every conversation`,
    fix: 'set dashboard.require_login: true, or keep it on 127.0.0.1 behind a reverse proxy that logs people in (docs/dashboard.md)',
  };
}
