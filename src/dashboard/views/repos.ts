import { stringify } from 'yaml';
import type { RepoConfig } from '../../config/index.ts';
import type { RepoSandboxInfo } from '../../gateway/index.ts';
import { Secret } from '../../util/secret.ts';
import { redactUrl } from '../../util/url-credentials.ts';
import { type Html, html } from '../html.ts';
import { ago } from './format.ts';

export interface RepoView {
  id: string;
  config: RepoConfig;
  sandbox: RepoSandboxInfo | undefined;
}

export function reposPage(repos: RepoView[]): Html {
  return html`<h1>Repositories</h1>
${repos.length === 0 ? html`<p>No repositories configured.</p>` : ''}
${repos.map(
  (r) => html`<section class="repo" id="repo-${r.id}">
<h2>${r.id}</h2>
<h3>Sandbox from the default branch${r.sandbox?.defaultBranch ? html` (<code>${r.sandbox.defaultBranch}</code>)` : ''}</h3>
${r.sandbox?.note ? html`<p class="muted">${r.sandbox.note}</p>` : ''}
${
  r.sandbox?.image
    ? html`<p>Image: ${r.sandbox.image.ok ? html`<code>${r.sandbox.image.image ?? ''}</code>, ${r.sandbox.image.built ? 'built' : 'from cache'}` : 'build failed'} ${ago(r.sandbox.image.at)}</p>`
    : html`<p class="muted">Image: not used since errand started.</p>`
}
<p>Network allowlist (<code>.errand/network-allowlist.yaml</code>):</p>
${r.sandbox?.allowlist !== undefined ? html`<pre>${r.sandbox.allowlist}</pre>` : html`<p class="muted">none on the default branch${r.sandbox?.note ? ' (yet)' : ''}: only the model API is reachable.</p>`}
<h3>Config in effect</h3>
<pre>${stringify(redact(r.config))}</pre>
</section>`,
)}`;
}

/**
 * The config with every credential shown only as set, and a URL's credentials
 * (`git_url: https://x-access-token:…@host/…`) as `***`.
 */
export function redact(v: unknown): unknown {
  if (v instanceof Secret) return '(set)';
  if (typeof v === 'string') return redactUrl(v);
  if (Array.isArray(v)) return v.map(redact);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v)
        .filter(([, x]) => x !== undefined)
        .map(([k, x]) => [k, redact(x)]),
    );
  }
  return v;
}
