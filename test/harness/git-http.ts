import { spawn } from 'node:child_process';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * git's own smart-HTTP server (`git http-backend`, a CGI program) behind a request handler,
 * standing in for a forge. When `token` is set, every request must carry it as the Basic
 * auth password, or gets 401 with a challenge, as forges answer.
 */
export function gitHttpBackend(
  projectRoot: string,
  opts: { token?: string; pushes?: string[] } = {},
) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (opts.token) {
      const auth = req.headers.authorization ?? '';
      const pass = auth.startsWith('Basic ')
        ? Buffer.from(auth.slice(6), 'base64').toString().split(':').slice(1).join(':')
        : '';
      if (pass !== opts.token) {
        req.resume();
        res.writeHead(401, { 'www-authenticate': 'Basic realm="git"', 'content-length': 0 });
        res.end();
        return;
      }
    }
    const url = new URL(req.url ?? '/', 'http://x');
    if (opts.pushes && url.pathname.endsWith('/git-receive-pack')) opts.pushes.push(url.pathname);
    const cgi = spawn('git', ['http-backend'], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: projectRoot,
        GIT_HTTP_EXPORT_ALL: '1',
        REQUEST_METHOD: req.method ?? 'GET',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        REMOTE_USER: 'agent',
        REMOTE_ADDR: '127.0.0.1',
        HTTP_GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
        ...(req.headers['content-encoding']
          ? { HTTP_CONTENT_ENCODING: String(req.headers['content-encoding']) }
          : {}),
      },
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on('data', (c: Buffer) => {
      if (headersDone) {
        res.write(c);
        return;
      }
      head = Buffer.concat([head, c]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString().split('\r\n')) {
        const i = line.indexOf(':');
        const k = line.slice(0, i).trim();
        const v = line.slice(i + 1).trim();
        if (k.toLowerCase() === 'status') status = Number.parseInt(v, 10);
        else headers[k] = v;
      }
      res.writeHead(status, headers);
      res.write(head.subarray(end + 4));
    });
    cgi.stdout.on('end', () => res.end());
  };
}
