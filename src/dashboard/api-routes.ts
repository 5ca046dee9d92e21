/**
 * The JSON API: the data the pages show, for scripts and the CLI. Reads need what the
 * pages need (nothing on loopback, else a login or the control token); changes need the
 * control token, or a dashboard page's CSRF token (checked before these routes run).
 *
 * What it shows is what the pages show: no host path (files are names and sizes) and no
 * credential in a URL (every answer passes through redactUrl).
 */
import { lstat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Context, Hono } from 'hono';
import type { Delivery, StoredMessage } from '../domain/index.ts';
import type { Gateway } from '../gateway/index.ts';
import { redactUrl } from '../util/url-credentials.ts';
import { type Env, MAX_TEXT, MODEL, webChannelOf } from './app-env.ts';
import { AFTER_SEQ, type PagingRule, type PagingValue, pagingValue } from './paging.ts';

/** `limit` of the list routes: one page is at most 1000 items. */
const LIST_LIMIT: PagingRule = { min: 1, max: 1000, default: 200 };

export function registerApi(app: Hono<Env>, deps: { gateway: Gateway; version: string }): void {
  const { gateway, version } = deps;
  const store = gateway.store;
  // Registered before the routes, so it sees every answer they give. JSON text is safe to
  // redact as text: a match stops at a quote or a backslash.
  app.use('/api/*', async (c, next) => {
    await next();
    if (!/^application\/json\b/.test(c.res.headers.get('content-type') ?? '')) return;
    const text = await c.res.text();
    const res = new Response(redactUrl(text), c.res);
    res.headers.delete('content-length');
    c.res = undefined;
    c.res = res;
  });
  app.get('/api/health', async (c) => {
    const { running, queued } = await gateway.status();
    const channels = Object.keys(gateway.config.repos).flatMap((repo) =>
      gateway.channelsOf(repo).map((ch) => ({ repo, channel: ch.kind, ...ch.health() })),
    );
    return c.json({
      status: 'ok',
      version: version,
      running: running.length,
      queued: queued.length,
      channels,
      // Conversations retention or a delete could not remove; tried again at each sweep.
      undeleted: gateway.undeletedConversations(),
    });
  });
  app.get('/api/tasks', async (c) => c.json(await gateway.status()));
  app.get('/api/tasks/:id', async (c) => {
    const task = await store.getTask(c.req.param('id'));
    if (!task) return c.json({ error: 'not_found', message: `no task ${c.req.param('id')}` }, 404);
    return c.json({ task });
  });
  app.get('/api/tasks/:id/events', async (c) => {
    const id = c.req.param('id');
    if (!(await store.getTask(id)))
      return c.json({ error: 'not_found', message: `no task ${id}` }, 404);
    const after = pagingValue('after', c.req.query('after'), AFTER_SEQ);
    if (!after.ok) return badPaging(c, after);
    const limit = pagingValue('limit', c.req.query('limit'), LIST_LIMIT);
    if (!limit.ok) return badPaging(c, limit);
    const events = await store.listEvents(id, after.value, limit.value);
    return c.json({ events, next: events.length === limit.value ? events.at(-1)!.seq : null });
  });
  app.get('/api/conversations', async (c) => {
    const limit = pagingValue('limit', c.req.query('limit'), LIST_LIMIT);
    if (!limit.ok) return badPaging(c, limit);
    return c.json({
      conversations: await store.listConversations({
        repoId: c.req.query('repo') || undefined,
        limit: limit.value,
      }),
    });
  });
  app.get('/api/conversations/:id', async (c) => {
    const id = c.req.param('id');
    const conversation = await store.getConversation(id);
    if (!conversation) return c.json({ error: 'not_found', message: `no conversation ${id}` }, 404);
    const [messages, tasks, deliveries] = await Promise.all([
      store.listMessages({ conversationId: id }),
      store.listTasks({ conversationId: id }),
      store.listDeliveries({ conversationId: id }),
    ]);
    return c.json({
      conversation,
      messages: messages.map(publicMessage),
      tasks,
      deliveries: await Promise.all(deliveries.map(publicDelivery)),
    });
  });
  app.get('/api/conversations/:id/network', async (c) => {
    const conversation = await store.getConversation(c.req.param('id'));
    if (!conversation) return c.json({ error: 'not_found', message: 'no such conversation' }, 404);
    return c.json({ requests: await gateway.networkLog(conversation) });
  });

  const submitApi = async (c: Context<Env>, repoId: string, threadKey?: string) => {
    const body = await readJson(c);
    if (typeof body === 'string') return c.json({ error: 'bad_request', message: body }, 400);
    const web = webChannelOf(gateway, repoId);
    if (!web) {
      return c.json(
        { error: 'not_found', message: `no repository ${repoId} with the web channel enabled` },
        404,
      );
    }
    const user = c.get('id').via === 'bearer' ? (headerUser(c) ?? 'operator') : c.get('id').user;
    const r = await web.submit({
      user,
      text: body.text,
      model: body.model,
      requestId: body.requestId,
      threadKey,
    });
    return c.json(
      { message_id: r.messageId, thread_key: r.threadKey, duplicate: r.duplicate },
      202,
    );
  };
  app.post('/api/repos/:id/tasks', (c) => submitApi(c, c.req.param('id')));
  app.post('/api/conversations/:id/messages', async (c) => {
    const conversation = await store.getConversation(c.req.param('id'));
    if (!conversation) {
      return c.json({ error: 'not_found', message: `no conversation ${c.req.param('id')}` }, 404);
    }
    if (conversation.channel !== 'web') {
      return c.json(
        {
          error: 'wrong_channel',
          message: `conversation ${conversation.id} lives in ${conversation.channel}; reply there`,
        },
        409,
      );
    }
    return submitApi(c, conversation.repoId, conversation.threadKey);
  });
  app.post('/api/:kind{tasks|conversations}/:id/stop', async (c) => {
    const { kind, id } = c.req.param();
    const exists = kind === 'tasks' ? await store.getTask(id) : await store.getConversation(id);
    if (!exists) {
      return c.json(
        { error: 'not_found', message: `no ${kind === 'tasks' ? 'task' : 'conversation'} ${id}` },
        404,
      );
    }
    const by = c.get('id').via === 'bearer' ? (headerUser(c) ?? 'the operator') : c.get('id').user;
    return c.json(await gateway.stop(id, by));
  });
  app.post('/api/conversations/:id/delete', async (c) => {
    const id = c.req.param('id');
    const r = await gateway.deleteConversation(id);
    if (r.outcome === 'not_found')
      return c.json({ error: 'not_found', message: `no conversation ${id}` }, 404);
    if (r.outcome === 'busy')
      return c.json(
        {
          error: 'busy',
          message: `conversation ${id} has ${r.tasks.length ? `tasks queued or running (${r.tasks.join(', ')})` : 'a task running'}; stop them first (errand stop ${id}), then delete it`,
        },
        409,
      );
    if (r.outcome === 'failed')
      return c.json(
        {
          error: 'not_deleted',
          message: `conversation ${id} could not be deleted: ${r.reason}. It is kept and tried again at every retention sweep; the service log names what is left`,
        },
        500,
      );
    return c.json({ deleted: id });
  });
}

function badPaging(c: Context<Env>, bad: Extract<PagingValue, { ok: false }>) {
  return c.json({ error: 'bad_request', parameter: bad.parameter, message: bad.message }, 400);
}

/** A message without the host paths its attachments were saved at. */
function publicMessage(m: StoredMessage) {
  return {
    ...m,
    attachments: m.attachments.map((a) => ({
      name: a.name,
      size: a.size,
      ...(a.contentType ? { contentType: a.contentType } : {}),
    })),
  };
}

/**
 * A delivery with its files as names and sizes (null: the file is gone), not as the host
 * paths of the deliveries folder; the conversation page serves them by name.
 */
async function publicDelivery(d: Delivery) {
  return {
    ...d,
    files: await Promise.all(
      d.files.map(async (f) => {
        const st = await lstat(f).catch(() => undefined);
        return { name: basename(f), size: st?.isFile() ? st.size : null };
      }),
    ),
  };
}

function headerUser(c: Context<Env>): string | undefined {
  return c.req.header('x-errand-user')?.slice(0, 64) || undefined;
}

async function readJson(
  c: Context<Env>,
): Promise<{ text: string; model?: string; requestId?: string } | string> {
  if (!/^application\/json\b/.test(c.req.header('content-type') ?? '')) {
    return 'send a JSON body with Content-Type: application/json';
  }
  let v: unknown;
  try {
    v = await c.req.json();
  } catch {
    return 'the body is not valid JSON';
  }
  if (!v || typeof v !== 'object' || Array.isArray(v))
    return 'expected a JSON object like {"text": "..."}';
  const b = v as Record<string, unknown>;
  if (typeof b.text !== 'string' || b.text.trim() === '')
    return '"text" must be a non-empty string';
  if (b.text.length > MAX_TEXT) return `"text" is longer than ${MAX_TEXT} characters`;
  if (b.model !== undefined && (typeof b.model !== 'string' || !MODEL.test(b.model))) {
    return '"model" must be a model name like claude-sonnet-4-5';
  }
  if (
    b.request_id !== undefined &&
    (typeof b.request_id !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(b.request_id))
  ) {
    return '"request_id" must be up to 64 letters, digits, _ or -';
  }
  return {
    text: b.text,
    model: b.model as string | undefined,
    requestId: b.request_id as string | undefined,
  };
}
