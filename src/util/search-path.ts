import { delimiter, isAbsolute } from 'node:path';

/**
 * A `PATH` with only its absolute entries. An empty or relative entry (`.`, a trailing
 * `:`) is searched from the current folder, which for `errand sandbox run` is a checkout
 * a sandboxed step could write to: a `git` or `podman` put there would run on the host.
 * Undefined stays undefined.
 */
export function absoluteSearchPath(path: string | undefined): string | undefined {
  return path?.split(delimiter).filter(isAbsolute).join(delimiter);
}
