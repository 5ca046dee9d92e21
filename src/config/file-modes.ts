/**
 * Who may read the files errand takes its config and credentials from. secrets.env and
 * .env hold credentials by design: errand refuses them unless they are the user's own and
 * private. errand.yaml may hold them inline (a password, a token in git_url): a copy others
 * can read gets a warning on every start and in `errand check`.
 */
import { statSync } from 'node:fs';
import { userInfo } from 'node:os';

/** What is wrong with a file's owner or mode, and the command that fixes it. */
export interface FileExposure {
  /** What was found, for a config issue: `mode 644`, `owner uid 1001`. */
  found: string;
  /** A sentence naming the file and what is wrong. */
  problem: string;
  fix: string;
}

function whoami(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.());
  }
}

/**
 * Whether someone other than the user errand runs as could read or change the file: it
 * belongs to another user, or its group or others have any permission on it. Undefined:
 * nobody else can.
 */
export function fileExposure(path: string): FileExposure | undefined {
  const st = statSync(path);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    return {
      found: `owner uid ${st.uid}`,
      problem: `${path} belongs to another user (uid ${st.uid}), not to the user errand runs as (uid ${uid})`,
      fix: `chown ${whoami()} ${path} && chmod 600 ${path}`,
    };
  }
  const mode = st.mode & 0o777;
  if ((mode & 0o077) !== 0) {
    const how = (mode & 0o044) !== 0 ? 'readable' : 'writable';
    const octal = mode.toString(8).padStart(3, '0');
    return {
      found: `mode ${octal}`,
      problem: `${path} is ${how} by other users (mode ${octal})`,
      fix: `chmod 600 ${path}`,
    };
  }
  return undefined;
}
