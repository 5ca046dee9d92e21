import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseDotenv, repoIdOfFolder, starterConfig } from '../config/index.ts';
import { ErrandError } from '../util/errors.ts';
import { redactUrl } from '../util/url-credentials.ts';
import { checkoutOriginUrl, findCheckout } from '../workspace/index.ts';

/**
 * The secrets.env name `errand init` keeps origin's URL under when it holds a credential:
 * errand.yaml then says `git_url: !secret GIT_URL`, and the token is only in the file
 * that is mode 0600 by rule.
 */
export const GIT_URL_SECRET = 'GIT_URL';

const SECRETS_HEADER =
  '# NAME=value lines for !secret NAME in errand.yaml. Keep this file mode 0600.\n';

export interface InitResult {
  /** What to print on stdout: the files written and what to do next. */
  message: string;
  /** What to print on stderr: what the config could not get right by itself. */
  warnings: string[];
}

/**
 * Writes the starter config for the git checkout `cwd` is in: its folder's name as the
 * repository id and its `origin` URL as git_url, so the agent's pushes reach the real
 * remote. Without a checkout or an origin the config names a local path, with a warning.
 */
export async function initConfig(opts: {
  path: string;
  force: boolean;
  cwd: string;
}): Promise<InitResult> {
  const { path } = opts;
  if (existsSync(path) && !opts.force) {
    throw new ErrandError(
      'usage',
      `${path} exists already. Edit it, or overwrite it with: errand init --force`,
    );
  }
  const warnings: string[] = [];
  const checkout = await findCheckout(opts.cwd);
  const top = checkout?.top ?? opts.cwd;
  const id = repoIdOfFolder(top);
  const origin = checkout ? await checkoutOriginUrl(checkout) : undefined;
  const secrets = join(dirname(path), 'secrets.env');
  let gitUrl = JSON.stringify(origin ?? top);
  let secretNote = '';
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  if (!checkout) {
    warnings.push(
      `${opts.cwd} is not inside a git checkout: repos.${id}.git_url is set to it, which is no repository. Set it to the repository's URL in ${path}, or run errand init --force in the checkout.`,
    );
  } else if (!origin) {
    warnings.push(
      `${top} has no origin remote: repos.${id}.git_url is its local path, so the agent can commit but its pushes reach only this checkout. Set git_url to the remote's URL in ${path} (or add one with git remote add origin URL and run errand init --force).`,
    );
  } else if (redactUrl(origin) !== origin) {
    // A credential in the userinfo or in a query parameter named like one (redactUrl).
    // A token in errand.yaml would be as readable as that file; in secrets.env it is under
    // the file rule errand enforces (mode 0600, refused otherwise).
    gitUrl = `!secret ${GIT_URL_SECRET}`;
    secretNote = keepInSecrets(secrets, origin, warnings);
  }

  // Private like the secrets file: the config may come to hold credentials inline.
  writeFileSync(path, starterConfig({ id, gitUrl }), { mode: 0o600 });
  chmodSync(path, 0o600);
  if (!existsSync(secrets)) {
    writeFileSync(secrets, SECRETS_HEADER, { mode: 0o600 });
    chmodSync(secrets, 0o600);
  }
  return {
    message: `Wrote ${path} (mode 0600) for repository ${id} at ${redactUrl(origin ?? top)}${secretNote}\nSecrets go in ${secrets} (mode 0600).\nNext: errand check --config ${path}`,
    warnings,
  };
}

/**
 * Puts origin's URL (with its credential) into secrets.env as GIT_URL_SECRET, unless the
 * file has that name already; returns the line that says so.
 */
function keepInSecrets(secrets: string, url: string, warnings: string[]): string {
  const existing = existsSync(secrets) ? readFileSync(secrets, 'utf8') : undefined;
  const held = existing === undefined ? undefined : parseDotenv(existing)[GIT_URL_SECRET];
  if (held !== undefined) {
    if (held !== url) {
      warnings.push(
        `${secrets} has ${GIT_URL_SECRET} already, and not origin's URL: it was left as it is. Check that it is the URL errand should clone.`,
      );
    }
    return `\norigin's URL holds a credential: the config reads it with !secret ${GIT_URL_SECRET} from ${secrets}.`;
  }
  // Single quotes keep the value literal (parseDotenv); a URL with a quote or a line break
  // in it is left for the user to add.
  if (/['\r\n]/.test(url)) {
    warnings.push(
      `origin's URL holds a credential and characters secrets.env cannot hold in quotes: add ${GIT_URL_SECRET}=URL to ${secrets} yourself.`,
    );
    return '';
  }
  const text = `${existing ?? SECRETS_HEADER}${existing && !existing.endsWith('\n') ? '\n' : ''}${GIT_URL_SECRET}='${url}'\n`;
  // Private before the token is in it, should the file have been readable by others.
  if (existing !== undefined) chmodSync(secrets, 0o600);
  writeFileSync(secrets, text, { mode: 0o600 });
  chmodSync(secrets, 0o600);
  return `\norigin's URL holds a credential: it went to ${secrets} as ${GIT_URL_SECRET}, and the config reads it with !secret ${GIT_URL_SECRET} (keep tokens there, not in errand.yaml).`;
}
