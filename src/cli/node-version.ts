/**
 * The oldest Node errand runs on, and why: 22.18 strips types by default (the sources run
 * as they are); node:sqlite (22.13), zstd in node:zlib and tls.getCACertificates (22.15)
 * are older. Checked by `errand` before anything else is loaded and by `errand check`.
 */
export const MIN_NODE = { major: 22, minor: 18 } as const;

/** `22.18`, as messages and docs write it. */
export const MIN_NODE_TEXT = `${MIN_NODE.major}.${MIN_NODE.minor}`;

/** Whether `version` (`process.versions.node`, e.g. `22.17.1`) is older than MIN_NODE. */
export function nodeTooOld(version: string): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major < MIN_NODE.major || (major === MIN_NODE.major && minor < MIN_NODE.minor);
}

/** What to tell the user when this Node is too old; undefined when it is recent enough. */
export function nodeVersionProblem(version: string): string | undefined {
  if (!nodeTooOld(version)) return undefined;
  return `errand needs Node ${MIN_NODE_TEXT} or newer (24 recommended); this is Node ${version}. Install a newer Node, or run errand from its checkout with bash scripts/node.sh, which fetches Node 24.`;
}
