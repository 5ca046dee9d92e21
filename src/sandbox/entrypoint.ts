import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where errand's own files appear in every sandbox, read-only. */
export const ERRAND_DIR = '/opt/errand';
export const ENTRYPOINT = `${ERRAND_DIR}/entrypoint.sh`;
export const CLAUDE_BIN = `${ERRAND_DIR}/bin/claude`;

/**
 * Runs before every command in a sandbox: errand's tools first on PATH, the flag Claude
 * Code needs to accept --dangerously-skip-permissions as root, and a HOME that exists.
 */
export const ENTRYPOINT_SCRIPT = `#!/bin/sh
# Written by errand; mounted read-only at ${ENTRYPOINT}.
export PATH="${ERRAND_DIR}/bin:\${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}"
export IS_SANDBOX=1
export HOME="\${HOME:-/root}"
[ -d "$HOME" ] || mkdir -p "$HOME" 2>/dev/null || export HOME=/tmp
exec "$@"
`;

/** Writes the entrypoint under the state folder (when changed) and returns its path. */
export function writeEntrypoint(stateDir: string): string {
  const dir = join(stateDir, 'sandbox');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, 'entrypoint.sh');
  if (!existsSync(path) || readFileSync(path, 'utf8') !== ENTRYPOINT_SCRIPT)
    writeFileSync(path, ENTRYPOINT_SCRIPT);
  chmodSync(path, 0o755);
  return path;
}
