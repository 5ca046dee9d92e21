/**
 * The dashboard: server-rendered pages, live updates over SSE, the web channel's forms and
 * the JSON API, on one port. Access rules are in access.ts; pages never show a secret
 * (credentials in the config render as "(set)").
 */
import { createServer, type Server } from 'node:http';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { getRequestListener } from '@hono/node-server';
import { getConnInfo } from '@hono/node-server/conninfo';
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { stream } from 'hono/streaming';
import type { WebChannel } from '../channels/web/index.ts';
import type { Task } from '../domain/index.ts';
import type { Gateway } from '../gateway/index.ts';
import type { Store } from '../store/index.ts';
import { describeError } from '../util/errors.ts';
import type { Logger } from '../util/logger.ts';
import { openFileInside } from '../util/no-follow-files.ts';
import { Access, fromAnotherSite, type Identity, SESSION_COOKIE } from './access.ts';
import { registerApi } from './api-routes.ts';
import { type Env, MAX_TEXT, MODEL, webChannelOf } from './app-env.ts';
import { CSS, JS } from './assets.ts';
import { clientAddress } from './client-address.ts';
import { limitConnections } from './connection-limits.ts';
import { type Html, html } from './html.ts';
import { DASHBOARD_LIMITS, type DashboardLimits } from './limits.ts';
import { LiveHub, parseTopic } from './live.ts';
import { LoginBudget, type LoginRefusal } from './login-budget.ts';
import { AFTER_SEQ, pagingValue } from './paging.ts';
import { conversationPage } from './views/conversation.ts';
import { layout, type PageContext } from './views/layout.ts';
import { loginPage } from './views/login.ts';
import { overviewPage, type RepoOverview, type TaskRow } from './views/overview.ts';
import { reposPage } from './views/repos.ts';
import { taskPage } from './views/task.ts';

export interface DashboardOptions {
  gateway: Gateway;
  logger: Logger;
  /** Bearer token for scripts and the CLI (state folder, mode 0600). */
  controlToken: string;
  /** sha256 (hex) of each login token by user name; used only when bound beyond loopback. */
  tokenHashes: Map<string, string>;
  version: string;
  /**
   * The folder reply files are copied to (the executor's deliveries folder). The file
   * route serves only regular files whose real path is inside it: a path in the store
   * that leads elsewhere, or a link, is a 404.
   */
  deliveriesDir: string;
  /** Bounds on what one client may hold; unset ones are DASHBOARD_LIMITS (tests shorten them). */
  limits?: Partial<DashboardLimits>;
}

const ID = /^[A-Za-z0-9_]{1,64}$/;
const REPO = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export interface Dashboard {
  server: Server;
  /** Ends live streams; call before closing the server. */
  close(): void;
}

export function createDashboard(o: DashboardOptions): Dashboard {
  const { gateway } = o;
  const store = gateway.store;
  const cfg = () => gateway.config.dashboard;
  const access = new Access({
    host: cfg().host,
    requireLogin: cfg().require_login,
    tokenHashes: o.tokenHashes,
    controlToken: o.controlToken,
    secureCookies: cfg().base_url?.startsWith('https:') ?? false,
  });
  const limits: DashboardLimits = { ...DASHBOARD_LIMITS, ...o.limits };
  const logins = new LoginBudget({
    perAddress: limits.loginFailuresPerAddress,
    overall: limits.loginFailuresOverall,
    windowMs: limits.loginWindowMs,
  });
  const hub = new LiveHub(gateway);
  const app = new Hono<Env>();

  app.onError((e, c) => {
    o.logger.error({ err: describeError(e), url: c.req.path }, 'dashboard request failed');
    return c.req.path.startsWith('/api/')
      ? c.json({ error: 'internal', message: 'errand hit an internal error; see its log' }, 500)
      : c.text('errand hit an internal error; the operator can find details in its log.', 500);
  });
  app.notFound((c) =>
    c.req.path.startsWith('/api/')
      ? c.json({ error: 'not_found', message: `no route ${c.req.method} ${c.req.path}` }, 404)
      : page(c, 'Not found', notFound('There is no such page.'), 404),
  );

  // DNS rebinding: a page of another site whose name resolves to 127.0.0.1 would be
  // same-origin with the dashboard. Only names the dashboard is known by are served.
  app.use('*', async (c, next) => {
    const host = (c.req.header('host') ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    const known = new Set(['localhost', '127.0.0.1', '::1', cfg().host.replace(/^\[|\]$/g, '')]);
    if (cfg().base_url) known.add(new URL(cfg().base_url!).hostname.replace(/^\[|\]$/g, ''));
    if (!known.has(host.toLowerCase()) && cfg().host !== '0.0.0.0' && cfg().host !== '::') {
      return c.text(`errand answers only as ${[...known].join(', ')}`, 421);
    }
    await next();
    c.header('x-content-type-options', 'nosniff');
    c.header('referrer-policy', 'same-origin');
    c.header('x-frame-options', 'DENY');
    c.header(
      'content-security-policy',
      "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    );
  });

  app.get('/assets/app.css', (c) => {
    c.header('cache-control', 'max-age=300');
    return c.body(CSS, 200, { 'content-type': 'text/css; charset=utf-8' });
  });
  app.get('/assets/app.js', (c) => {
    c.header('cache-control', 'max-age=300');
    return c.body(JS, 200, { 'content-type': 'text/javascript; charset=utf-8' });
  });

  // ---- login ----------------------------------------------------------------------------
  app.get('/login', (c) =>
    c.html(loginPage(undefined, safeNext(c.req.query('next')), o.version).value),
  );
  app.post('/login', bodyTooLarge(limits.maxLoginBodyBytes), async (c) => {
    // Refused unread, before the budget: a hostile page would otherwise have each of its
    // visitors guess for it (from their own address) or log them in as someone else.
    if (fromAnotherSite(c.req.header('sec-fetch-site'))) {
      return c.html(
        loginPage('This login form came from another site. Log in here.', '/', o.version).value,
        403,
      );
    }
    const address = clientAddress(getConnInfo(c).remote.address);
    const form = await c.req.parseBody();
    const next = safeNext(String(form.next ?? '/'));
    const refused = logins.refusal(address);
    if (refused) {
      c.header('retry-after', String(refused.retryAfterSeconds));
      return c.html(loginPage(loginsRefused(refused), next, o.version).value, 429);
    }
    const session = access.login(String(form.token ?? ''));
    if (!session) {
      // Counted before the pause, so guesses sent in parallel are all counted.
      const spent = logins.fail(address);
      o.logger.warn(
        // x-forwarded-for is whatever the client wrote; only the address is counted.
        { address, forwardedFor: c.req.header('x-forwarded-for') },
        'dashboard login refused',
      );
      if (spent) {
        o.logger.warn(
          { address, scope: spent.scope, retryAfterSeconds: spent.retryAfterSeconds },
          spent.scope === 'address'
            ? `dashboard logins from ${address} refused: ${limits.loginFailuresPerAddress} wrong tokens within ${limits.loginWindowMs / 60_000} minutes`
            : `every dashboard login refused: ${limits.loginFailuresOverall} wrong tokens from all addresses within ${limits.loginWindowMs / 60_000} minutes`,
        );
      }
      // Slows guessing within the budget.
      await new Promise((r) => setTimeout(r, 400));
      return c.html(loginPage('That token is not valid.', next, o.version).value, 401);
    }
    setCookie(c, SESSION_COOKIE, session.sessionId, {
      httpOnly: true,
      sameSite: 'Strict',
      secure: access.secureCookies,
      path: '/',
      maxAge: Math.floor(access.sessionMs / 1000),
    });
    o.logger.info({ user: session.user }, 'dashboard login');
    return c.redirect(next, 303);
  });

  // ---- identity ---------------------------------------------------------------------------
  // No body is read before this: a client not yet known gets its answer without sending one.
  app.use('*', async (c, next) => {
    const id = access.identify(getCookie(c, SESSION_COOKIE), c.req.header('authorization'));
    if (!id) {
      if (c.req.path.startsWith('/api/') || c.req.path === '/live') {
        return c.json(
          {
            error: 'unauthorized',
            message:
              'log in on the dashboard, or send the control token as Authorization: Bearer TOKEN',
          },
          401,
        );
      }
      return c.redirect(`/login?next=${encodeURIComponent(c.req.path)}`, 303);
    }
    c.set('id', id);
    await next();
  });
  app.use('*', bodyTooLarge(limits.maxBodyBytes));
  app.use('*', async (c, next) => {
    const id = c.get('id');
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      const submitted =
        c.req.header('x-csrf-token') ??
        (/form/.test(c.req.header('content-type') ?? '')
          ? String((await c.req.parseBody())._csrf ?? '')
          : undefined);
      if (!access.allowsChange(id, submitted, c.req.header('sec-fetch-site'))) {
        if (c.req.path.startsWith('/api/')) {
          return c.json(
            {
              error: 'unauthorized',
              message: 'send the control token as Authorization: Bearer TOKEN',
            },
            401,
          );
        }
        return page(
          c,
          'Refused',
          notFound(
            'This form is out of date or came from another site. Reload the page and try again.',
          ),
          403,
        );
      }
    }
    await next();
  });

  app.post('/logout', (c) => {
    access.logout(c.get('id').sessionId);
    deleteCookie(c, SESSION_COOKIE, { path: '/' });
    return c.redirect('/login', 303);
  });

  // ---- pages ------------------------------------------------------------------------------
  app.get('/', async (c) => {
    const { running, queued } = await gateway.status();
    const repos: RepoOverview[] = [];
    for (const [id, repo] of Object.entries(gateway.config.repos)) {
      const active = [...running, ...queued].filter((t) => t.repoId === id);
      const recent = (await store.listTasks({ repoId: id, newestFirst: true, limit: 15 })).filter(
        (t) => t.state !== 'running' && t.state !== 'queued',
      );
      repos.push({
        id,
        channels: gateway.channelsOf(id).map((ch) => ({ kind: ch.kind, ...ch.health() })),
        webEnabled: repo.web.enabled,
        models: repo.model,
        active: await rows(store, active),
        recent: await rows(store, recent),
        conversations: await store.listConversations({ repoId: id, limit: 20 }),
      });
    }
    return page(
      c,
      'Overview',
      overviewPage(ctx(c), repos, {
        running: running.length,
        queued: queued.length,
        maxConcurrent: gateway.config.execution.max_concurrent,
        undeleted: gateway.undeletedConversations(),
      }),
      200,
      { topic: 'overview' },
    );
  });

  app.get('/conversations/:id', async (c) => {
    const id = c.req.param('id');
    const conversation = ID.test(id) ? await store.getConversation(id) : undefined;
    if (!conversation) return page(c, 'Not found', notFound(`No conversation ${id}.`), 404);
    const [messages, deliveries, tasks, network] = await Promise.all([
      store.listMessages({ conversationId: id }),
      store.listDeliveries({ conversationId: id }),
      store.listTasks({ conversationId: id }),
      gateway.networkLog(conversation),
    ]);
    const withEvents = await Promise.all(
      tasks.map(async (task) => ({ task, events: await store.listEvents(task.id, 0, 2000) })),
    );
    return page(
      c,
      conversation.title || id,
      conversationPage(ctx(c), {
        conversation,
        messages,
        deliveries,
        tasks: withEvents,
        network,
        canReply: conversation.channel === 'web' && webChannel(conversation.repoId) !== undefined,
      }),
      200,
      { topic: `conversation:${id}` },
    );
  });

  app.get('/conversations/:id/files/:delivery/:name', async (c) => {
    const { id, delivery, name } = c.req.param();
    const d = (await store.listDeliveries({ conversationId: id })).find((x) => x.id === delivery);
    const path = d?.files.find((f) => basename(f) === name);
    const file = path && (await openFileInside(o.deliveriesDir, path));
    if (!file) return page(c, 'Not found', notFound('That file is no longer there.'), 404);
    return c.body(Readable.toWeb(file.handle.createReadStream()) as ReadableStream, 200, {
      'content-type': 'application/octet-stream',
      'content-disposition': `attachment; filename*=UTF-8''${encodeURIComponent(name)}`,
    });
  });

  app.get('/tasks/:id', async (c) => {
    const id = c.req.param('id');
    const task = ID.test(id) ? await store.getTask(id) : undefined;
    if (!task) return page(c, 'Not found', notFound(`No task ${id}.`), 404);
    const events = await store.listEvents(id, 0, 5000);
    return page(
      c,
      `Task ${id}`,
      taskPage(ctx(c), task, await store.getConversation(task.conversationId), events),
      200,
      { topic: `task:${id}`, after: events.at(-1)?.seq ?? 0 },
    );
  });

  app.get('/repos', async (c) => {
    const repos = await Promise.all(
      Object.entries(gateway.config.repos).map(async ([id, config]) => ({
        id,
        config,
        sandbox: await gateway.describeRepo(id),
      })),
    );
    return page(c, 'Repositories', reposPage(repos));
  });

  app.post('/repos/:id/tasks', async (c) => {
    const form = await c.req.parseBody();
    const repoId = c.req.param('id');
    const web = REPO.test(repoId) ? webChannel(repoId) : undefined;
    const text = String(form.text ?? '').trim();
    const model = String(form.model ?? '').trim() || undefined;
    if (!web)
      return page(c, 'Not found', notFound(`No repository ${repoId} with the web channel.`), 404);
    if (!text || text.length > MAX_TEXT || (model && !MODEL.test(model))) {
      return page(
        c,
        'Refused',
        notFound(
          'Write a task (up to 100,000 characters) and a model name of letters, digits, . and -.',
        ),
        400,
      );
    }
    const r = await web.submit({ user: c.get('id').user, text, model });
    return c.redirect(await whereMessageLands(store, r.messageId), 303);
  });

  app.post('/conversations/:id/messages', async (c) => {
    const form = await c.req.parseBody();
    const conversation = await store.getConversation(c.req.param('id'));
    const text = String(form.text ?? '').trim();
    const web = conversation?.channel === 'web' ? webChannel(conversation.repoId) : undefined;
    if (!conversation || !web)
      return page(c, 'Not found', notFound('No such web conversation.'), 404);
    if (!text || text.length > MAX_TEXT)
      return c.redirect(`/conversations/${conversation.id}`, 303);
    await web.submit({ user: c.get('id').user, text, threadKey: conversation.threadKey });
    return c.redirect(`/conversations/${conversation.id}`, 303);
  });

  app.post('/tasks/:id/stop', async (c) => {
    const id = c.req.param('id');
    const task = ID.test(id) ? await store.getTask(id) : undefined;
    if (!task) return page(c, 'Not found', notFound(`No task ${id}.`), 404);
    await gateway.stop(id, c.get('id').user);
    return c.redirect(`/tasks/${id}`, 303);
  });

  app.post('/conversations/:id/stop', async (c) => {
    const id = c.req.param('id');
    const conv = ID.test(id) ? await store.getConversation(id) : undefined;
    if (!conv) return page(c, 'Not found', notFound(`No conversation ${id}.`), 404);
    await gateway.stop(id, c.get('id').user);
    return c.redirect(`/conversations/${id}`, 303);
  });

  // ---- live -------------------------------------------------------------------------------
  app.get('/live', async (c) => {
    const topic = parseTopic(c.req.query('topic'));
    if (!topic) return c.json({ error: 'bad_request', message: 'unknown topic' }, 400);
    const lastEventId = c.req.header('last-event-id');
    const after =
      lastEventId !== undefined
        ? pagingValue('Last-Event-ID', lastEventId, AFTER_SEQ)
        : pagingValue('after', c.req.query('after'), AFTER_SEQ);
    if (!after.ok) {
      return c.json(
        { error: 'bad_request', parameter: after.parameter, message: after.message },
        400,
      );
    }
    const taskIds =
      topic.kind === 'conversation'
        ? (await store.listTasks({ conversationId: topic.id })).map((t) => t.id)
        : [];
    c.header('content-type', 'text/event-stream; charset=utf-8');
    c.header('cache-control', 'no-store');
    c.header('x-accel-buffering', 'no');
    return stream(c, async (s) => {
      let ended: () => void = () => undefined;
      const closed = new Promise<void>((resolve) => {
        ended = resolve;
        s.onAbort(resolve);
      });
      // What the client has not taken yet waits in errand's memory: a page left open on a
      // laptop gone to sleep reads nothing while the agent writes on. Past the bound the
      // stream ends (once what is queued went out); the page reconnects and resumes after
      // its last event.
      let unsent = 0;
      let ending = false;
      const end = () => {
        if (ending) return;
        ending = true;
        void s.close();
        ended();
      };
      const close = await hub.open(
        {
          write: (chunk) => {
            if (ending) return;
            const bytes = Buffer.byteLength(chunk);
            unsent += bytes;
            void s.write(chunk).then(() => {
              unsent -= bytes;
            });
            if (unsent > limits.maxLiveUnsentBytes) end();
          },
          end,
        },
        topic,
        after.value,
        taskIds,
      );
      await closed;
      close();
    });
  });

  registerApi(app, { gateway, version: o.version });

  // ---- helpers ----------------------------------------------------------------------------
  function ctx(c: Context<Env>): PageContext {
    const id = c.get('id');
    return {
      user: id.user,
      csrf: id.csrf,
      loginRequired: access.loginRequired,
      version: o.version,
    };
  }

  function page(
    c: Context<Env>,
    title: string,
    body: Html,
    status: 200 | 400 | 403 | 404 = 200,
    live?: { topic: string; after?: number },
  ) {
    c.header('cache-control', 'no-store');
    // A live page asks for its content again when something changed: send only that.
    if (c.req.header('x-fragment') === '1') return c.html(body.value, status);
    const id = c.get('id') as Identity | undefined;
    const context: PageContext = id
      ? ctx(c)
      : { user: '', csrf: '', loginRequired: access.loginRequired, version: o.version };
    return c.html(layout(context, title, body, live).value, status);
  }

  function webChannel(repoId: string): WebChannel | undefined {
    return webChannelOf(gateway, repoId);
  }

  // requestTimeout bounds receiving a request (headers and body), not answering it: a live
  // stream is a short GET with a long answer and stays open.
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: limits.timeoutCheckMs,
    },
    getRequestListener(app.fetch),
  );
  limitConnections(server, {
    total: limits.maxConnections,
    perAddress: limits.maxConnectionsPerAddress,
    logger: o.logger,
  });
  return {
    server,
    close: () => hub.close(),
  };
}

function bodyTooLarge(maxSize: number) {
  return bodyLimit({
    maxSize,
    onError: (c) => c.text(`request too large: at most ${maxSize} bytes`, 413),
  });
}

function loginsRefused(r: LoginRefusal): string {
  const minutes = Math.ceil(r.retryAfterSeconds / 60);
  const when = `Try again in ${minutes} minute${minutes === 1 ? '' : 's'}; a session already open keeps working.`;
  return r.scope === 'address'
    ? `Too many wrong tokens came from your address, so no token from it is checked for now. ${when}`
    : `Too many wrong tokens were tried, so no token is checked for now. ${when}`;
}

function notFound(text: string): Html {
  return html`<p>${text}</p><p><a href="/">Back to the overview</a></p>`;
}

/** Only local paths: `next` must not send a person to another site after login. */
function safeNext(next: string | undefined): string {
  return next && /^\/(?![/\\])[^\s]*$/.test(next) ? next : '/';
}

async function rows(store: Store, tasks: Task[]): Promise<TaskRow[]> {
  return await Promise.all(
    tasks.map(async (task) => {
      const [conversation, messages] = await Promise.all([
        store.getConversation(task.conversationId),
        store.listMessages({ taskId: task.id }),
      ]);
      const first = messages[0];
      return {
        task,
        conversation,
        sender: first ? (first.sender.name ?? first.sender.id) : undefined,
      };
    }),
  );
}

/** The conversation page of a just-submitted message, once intake has placed it. */
async function whereMessageLands(store: Store, messageId: string): Promise<string> {
  for (let i = 0; i < 40; i++) {
    const m = await store.getMessage(messageId);
    if (m?.conversationId) return `/conversations/${m.conversationId}`;
    if (m && m.state === 'rejected') return '/';
    await new Promise((r) => setTimeout(r, 50));
  }
  return '/';
}
