/**
 * A small forge on loopback over HTTPS: git's own http-backend serving bare repositories
 * under /OWNER/NAME.git, and an API that opens pull requests
 * (POST /api/repos/OWNER/NAME/pulls). Both accept only the real token (Basic auth password
 * for git, Bearer for the API) and record what they were sent, so a test can prove that
 * the real token, not the surrogate the sandbox held, reached the forge.
 */
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { CertificateAuthority } from '../../src/proxy/index.ts';
import { gitHttpBackend } from './git-http.ts';

export interface PullRequest {
  number: number;
  repo: string;
  title: string;
  head: string;
  base: string;
  url: string;
}

export interface Forge {
  port: number;
  pulls: PullRequest[];
  /** Paths of accepted pushes (git-receive-pack requests). */
  pushes: string[];
  /** Every Basic auth password git sent (the forge accepts only the real token). */
  gitPasswords: string[];
  /** Every Authorization header the API got. */
  apiAuthorizations: string[];
  close(): Promise<void>;
}

export async function startForge(o: {
  /** Folder holding the bare repositories (OWNER/NAME.git). */
  root: string;
  name: string;
  token: string;
  /** Folder of the CA that signs the forge's certificate. */
  caDir: string;
}): Promise<Forge> {
  const ca = await CertificateAuthority.loadOrCreate(o.caDir);
  const context = await ca.contextFor(o.name);
  const pulls: PullRequest[] = [];
  const pushes: string[] = [];
  const gitPasswords: string[] = [];
  const apiAuthorizations: string[] = [];
  const git = gitHttpBackend(o.root, { token: o.token, pushes });
  const server = createServer({ SNICallback: (_n, cb) => cb(null, context) }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://forge');
    if (url.pathname.includes('.git/')) {
      const auth = req.headers.authorization ?? '';
      if (auth.startsWith('Basic ')) {
        gitPasswords.push(
          Buffer.from(auth.slice(6), 'base64').toString().split(':').slice(1).join(':'),
        );
      }
      git(req, res);
      return;
    }
    const m = /^\/api\/repos\/([^/]+\/[^/]+)\/pulls$/.exec(url.pathname);
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const json = (status: number, v: unknown) =>
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(v));
      if (!m || req.method !== 'POST') return json(404, { message: 'Not Found' });
      apiAuthorizations.push(req.headers.authorization ?? '');
      if (req.headers.authorization !== `Bearer ${o.token}`) {
        return json(401, { message: 'Bad credentials' });
      }
      let input: { title?: string; head?: string; base?: string };
      try {
        input = JSON.parse(body);
      } catch {
        return json(400, { message: 'Problems parsing JSON' });
      }
      const pr: PullRequest = {
        number: pulls.length + 1,
        repo: m[1]!,
        title: String(input.title ?? ''),
        head: String(input.head ?? ''),
        base: String(input.base ?? 'main'),
        url: `https://${o.name}/${m[1]}/pull/${pulls.length + 1}`,
      };
      pulls.push(pr);
      json(201, { number: pr.number, html_url: pr.url });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    pulls,
    pushes,
    gitPasswords,
    apiAuthorizations,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
