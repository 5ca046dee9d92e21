import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { WebChannel } from '../channels/web/index.ts';
import type { Gateway } from '../gateway/index.ts';
import type { Store } from '../store/index.ts';
import { describeError } from '../util/errors.ts';
import type { Logger } from '../util/logger.ts';

export interface ControlApiOptions {
  gateway: Gateway;
  store: Store;
  logger: Logger;
  /** Bearer token that state-changing requests must carry (the CLI reads it from the state folder). */
  controlToken: string;
  version: string;
}

/**
 * The JSON API the CLI and scripts use: health, tasks, stop. Reads are open on the bound
 * address; a stop needs the control token, which a browser cannot attach cross-site, so
 * no other web page can stop tasks.
 */
export function createControlApi(opts: ControlApiOptions): Server {
  const server = createServer((req, res) => {
    handle(opts, req, res).catch((e) => {
      opts.logger.error({ err: describeError(e), url: req.url }, 'control API request failed');
      if (!res.headersSent)
        json(res, 500, { error: 'internal', message: 'errand hit an internal error; see its log' });
      else res.end();
    });
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  return server;
}

async function handle(
  opts: ControlApiOptions,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://errand.invalid');
  const path = url.pathname;
  if (req.method === 'GET' && path === '/api/health') {
    const { running, queued } = await opts.gateway.status();
    const channels = Object.keys(opts.gateway.config.repos).flatMap((repo) =>
      opts.gateway.channelsOf(repo).map((c) => ({ repo, channel: c.kind, ...c.health() })),
    );
    json(res, 200, {
      status: 'ok',
      version: opts.version,
      running: running.length,
      queued: queued.length,
      channels,
    });
    return;
  }
  if (req.method === 'GET' && path === '/api/tasks') {
    const { running, queued } = await opts.gateway.status();
    json(res, 200, { running, queued });
    return;
  }
  if (req.method === 'GET' && path === '/api/conversations') {
    const repo = url.searchParams.get('repo') ?? undefined;
    json(res, 200, {
      conversations: await opts.store.listConversations({ repoId: repo, limit: 200 }),
    });
    return;
  }
  const conv = /^\/api\/conversations\/(c_[A-Za-z0-9]{1,62})$/.exec(path);
  if (req.method === 'GET' && conv) {
    const id = conv[1]!;
    const conversation = await opts.store.getConversation(id);
    if (!conversation) {
      json(res, 404, { error: 'not_found', message: `no conversation ${id}` });
      return;
    }
    const [messages, tasks, deliveries] = await Promise.all([
      opts.store.listMessages({ conversationId: id }),
      opts.store.listTasks({ conversationId: id }),
      opts.store.listDeliveries({ conversationId: id }),
    ]);
    json(res, 200, { conversation, messages, tasks, deliveries });
    return;
  }
  const newTask = /^\/api\/repos\/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})\/tasks$/.exec(path);
  const reply = /^\/api\/conversations\/(c_[A-Za-z0-9]{1,62})\/messages$/.exec(path);
  if (newTask || reply) {
    if (!mayChange(req, res, opts.controlToken)) return;
    const body = await readJson(req);
    if (!body.ok) {
      json(res, 400, { error: 'bad_request', message: body.message });
      return;
    }
    const input = parseSubmission(body.value);
    if (typeof input === 'string') {
      json(res, 400, { error: 'bad_request', message: input });
      return;
    }
    let repoId: string;
    let threadKey: string | undefined;
    if (newTask) {
      repoId = newTask[1]!;
    } else {
      const conversation = await opts.store.getConversation(reply![1]!);
      if (!conversation) {
        json(res, 404, { error: 'not_found', message: `no conversation ${reply![1]}` });
        return;
      }
      if (conversation.channel !== 'web') {
        json(res, 409, {
          error: 'wrong_channel',
          message: `conversation ${conversation.id} lives in ${conversation.channel}; reply there`,
        });
        return;
      }
      repoId = conversation.repoId;
      threadKey = conversation.threadKey;
    }
    const web = opts.gateway
      .channelsOf(repoId)
      .find((c): c is WebChannel => c instanceof WebChannel);
    if (!web) {
      json(res, 404, {
        error: 'not_found',
        message: `no repository ${repoId} with the web channel enabled`,
      });
      return;
    }
    const user =
      typeof req.headers['x-errand-user'] === 'string'
        ? req.headers['x-errand-user'].slice(0, 64)
        : 'operator';
    const r = await web.submit({
      user,
      text: input.text,
      model: input.model,
      requestId: input.requestId,
      threadKey,
    });
    json(res, 202, { message_id: r.messageId, thread_key: r.threadKey, duplicate: r.duplicate });
    return;
  }
  const stop = /^\/api\/(tasks|conversations)\/([A-Za-z0-9_]{1,64})\/stop$/.exec(path);
  if (stop) {
    if (!mayChange(req, res, opts.controlToken)) return;
    const id = stop[2]!;
    const exists =
      stop[1] === 'tasks' ? await opts.store.getTask(id) : await opts.store.getConversation(id);
    if (!exists) {
      json(res, 404, {
        error: 'not_found',
        message: `no ${stop[1] === 'tasks' ? 'task' : 'conversation'} ${id}`,
      });
      return;
    }
    const by =
      typeof req.headers['x-errand-user'] === 'string'
        ? req.headers['x-errand-user'].slice(0, 64)
        : 'the operator';
    const result = await opts.gateway.stop(id, by);
    json(res, 200, result);
    return;
  }
  json(res, 404, { error: 'not_found', message: `no route ${req.method} ${path}` });
}

const MAX_BODY = 1024 * 1024;

async function readJson(
  req: IncomingMessage,
): Promise<{ ok: true; value: unknown } | { ok: false; message: string }> {
  if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) {
    return { ok: false, message: 'send a JSON body with Content-Type: application/json' };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) return { ok: false, message: `the body is larger than ${MAX_BODY} bytes` };
    chunks.push(c);
  }
  try {
    return { ok: true, value: JSON.parse(Buffer.concat(chunks).toString('utf8')) };
  } catch {
    return { ok: false, message: 'the body is not valid JSON' };
  }
}

function parseSubmission(
  v: unknown,
): { text: string; model?: string; requestId?: string } | string {
  if (!v || typeof v !== 'object' || Array.isArray(v))
    return 'expected a JSON object like {"text": "..."}';
  const o = v as Record<string, unknown>;
  if (typeof o.text !== 'string' || o.text.trim() === '')
    return '"text" must be a non-empty string';
  if (o.text.length > 100_000) return '"text" is longer than 100000 characters';
  if (
    o.model !== undefined &&
    (typeof o.model !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(o.model))
  )
    return '"model" must be a model name like claude-sonnet-4-5';
  if (
    o.request_id !== undefined &&
    (typeof o.request_id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(o.request_id))
  )
    return '"request_id" must be up to 64 letters, digits, _ or -';
  return {
    text: o.text,
    model: o.model as string | undefined,
    requestId: o.request_id as string | undefined,
  };
}

/** State changes are POSTs with the control token; answers the refusal itself when not. */
function mayChange(req: IncomingMessage, res: ServerResponse, token: string): boolean {
  if (req.method !== 'POST') {
    json(res, 405, { error: 'method_not_allowed', message: 'use POST' }, { allow: 'POST' });
    return false;
  }
  if (!authorized(req, token)) {
    json(res, 401, {
      error: 'unauthorized',
      message: 'send the control token as Authorization: Bearer TOKEN',
    });
    return false;
  }
  return true;
}

function authorized(req: IncomingMessage, token: string): boolean {
  const header = req.headers.authorization ?? '';
  const given = Buffer.from(header.startsWith('Bearer ') ? header.slice(7) : '');
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}
