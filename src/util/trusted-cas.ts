import { getCACertificates } from 'node:tls';

/**
 * The CAs errand checks servers' certificates against: the operating system's store (so a
 * CA the operator installed there counts; Node's bundled list where the system has none),
 * NODE_EXTRA_CA_CERTS, and any given here (a repository's `upstream_ca`).
 */
export function trustedCas(...extra: string[]): string[] {
  const system = getCACertificates('system');
  return [
    ...new Set([
      ...(system.length > 0 ? system : getCACertificates('bundled')),
      ...getCACertificates('extra'),
      ...extra,
    ]),
  ];
}
