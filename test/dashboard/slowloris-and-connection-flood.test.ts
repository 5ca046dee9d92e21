import assert from 'node:assert/strict';
import { type IncomingMessage, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type DashboardFixture, dashboardFixture } from '../harness/dashboard-fixture.ts';
import { eventually } from '../harness/gateway-fixture.ts';

/** Bounds short enough for a test; errand's own are in DASHBOARD_LIMITS. */
const SHORT = { headersTimeoutMs: 1_500, requestTimeoutMs: 2_500, timeoutCheckMs: 250 };

/** A raw connection and everything it received until the server closed it. */
function rawConnection(
  url: string,
  localAddress?: string,
): { socket: Socket; received: () => string; closed: Promise<string> } {
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname, port: Number(port), localAddress });
  let data = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    data += chunk;
  });
  const closed = new Promise<string>((resolve) => {
    socket.on('error', () => {});
    socket.on('close', () => resolve(data));
  });
  return { socket, received: () => data, closed };
}

/** Writes `text` one byte a second until the server hangs up; returns how many were sent. */
function drip(socket: Socket, text: string): { sent: () => number; stop: () => void } {
  let sent = 0;
  const timer = setInterval(() => {
    if (sent < text.length && !socket.destroyed) socket.write(text[sent++]!);
  }, 1_000);
  socket.once('close', () => clearInterval(timer));
  return { sent: () => sent, stop: () => clearInterval(timer) };
}

/** Opens a live stream of the overview over a raw socket and waits for its first frame. */
async function openLive(url: string, bearer: string) {
  const c = rawConnection(url);
  c.socket.write(
    `GET /live?topic=overview HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${bearer}\r\n\r\n`,
  );
  await eventually(async () => c.received().includes('retry: 2000'), 'the live stream to open');
  assert.match(c.received(), /^HTTP\/1\.1 200 /);
  return c;
}

/** GET over a connection of its own from `localAddress`: a status, or how it failed. */
function get(url: string, localAddress: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(url, { localAddress, agent: false }, (res: IncomingMessage) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    req.end();
  });
}

/** A live stream held open from `localAddress` with node:http, as a browser tab would. */
function holdLive(url: string, localAddress: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/live?topic=overview`, { localAddress, agent: false }, (res) =>
      resolve(res),
    );
    req.on('error', reject);
    req.end();
  });
}

async function startTask(f: DashboardFixture, text: string): Promise<void> {
  const r = await fetch(`${f.url}/api/repos/app/tasks`, {
    method: 'POST',
    headers: { authorization: `Bearer ${f.controlToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ text }),
  });
  assert.equal(r.status, 202);
}

describe('a slowloris client', () => {
  let f: DashboardFixture;
  before(async () => {
    f = await dashboardFixture({
      yaml: 'dashboard:\n  require_login: true\nrepos:\n  app:\n    git_url: /srv/app.git\n',
      tokens: { bob: 'bob-token-abcdefghijklmnop' },
      limits: SHORT,
    });
  });
  after(() => f?.close());

  it('is cut off with 408 when it sends a login body a byte a second, while a live stream stays open past the bound', async () => {
    const live = await openLive(f.url, f.controlToken);
    const body = 'token=bob-token-abcdefghijklmnop&next=%2F';
    const slow = rawConnection(f.url);
    slow.socket.write(
      `POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    const dripping = drip(slow.socket, body);
    const answer = await slow.closed;
    dripping.stop();
    assert.match(answer, /^HTTP\/1\.1 408 /, 'the server hung up with Request Timeout');
    assert.ok(dripping.sent() < body.length, 'it hung up before the body was complete');
    assert.doesNotMatch(answer, /set-cookie/i, 'no session came of it');

    // The stream opened before the slow request, so it has been open longer than the bound.
    assert.equal(live.socket.destroyed, false, 'the live stream is still open');
    const before = live.received().length;
    await startTask(f, 'hang while the stream is watched');
    await eventually(
      async () => live.received().slice(before).includes('event: changed'),
      'the live stream to report the new task',
    );
    live.socket.destroy();
  });

  it('is cut off with 408 when it sends its headers a byte a second', async () => {
    const slow = rawConnection(f.url);
    const dripping = drip(
      slow.socket,
      'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n',
    );
    const answer = await slow.closed;
    dripping.stop();
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.ok(dripping.sent() < 40, 'it hung up long before the headers were complete');
  });

  it('gets its answer without sending the body it announced, when it has not logged in', async () => {
    for (const path of ['/repos/app/tasks', '/api/repos/app/tasks']) {
      const c = rawConnection(f.url);
      // Chunked, so nothing but reading tells where the body ends; it never does.
      c.socket.write(
        `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{"text": "hello"\r\n`,
      );
      await eventually(async () => /\r\n\r\n/.test(c.received()), `an answer to ${path}`);
      assert.match(
        c.received(),
        path.startsWith('/api/') ? /^HTTP\/1\.1 401 / : /^HTTP\/1\.1 303 /,
      );
      c.socket.destroy();
    }
    assert.equal(
      (await f.store.listConversations({})).length,
      1,
      'only the task of the first test',
    );
  });

  it('is refused a login body beyond 4 KiB, and a token inside it is not checked', async () => {
    const r = await fetch(`${f.url}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `token=bob-token-abcdefghijklmnop&pad=${'a'.repeat(5000)}`,
    });
    assert.equal(r.status, 413);
    assert.equal(r.headers.get('set-cookie'), null);
  });

  it('still logs in with an ordinary form (the neighbour of the refusals above)', async () => {
    const r = await fetch(`${f.url}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'token=bob-token-abcdefghijklmnop&next=%2F',
    });
    assert.equal(r.status, 303);
    assert.match(r.headers.get('set-cookie') ?? '', /errand_session=/);
  });

  it('is refused a JSON body beyond 1 MiB even with the control token', async () => {
    const r = await fetch(`${f.url}/api/repos/app/tasks`, {
      method: 'POST',
      headers: { authorization: `Bearer ${f.controlToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'x'.repeat(1024 * 1024) }),
    });
    assert.equal(r.status, 413);
  });
});

describe('a client opening connections until none are left', () => {
  let f: DashboardFixture;
  before(async () => {
    f = await dashboardFixture({ limits: { maxConnectionsPerAddress: 4, maxConnections: 8 } });
  });
  after(() => f?.close());

  it('is refused more than its share of connections from one address, while another address still gets a page', async () => {
    const held = await Promise.all([1, 2, 3, 4].map(() => holdLive(f.url, '127.0.0.2')));
    for (const res of held) assert.equal(res.statusCode, 200);

    const refused = await get(`${f.url}/`, '127.0.0.2');
    assert.ok(
      typeof refused === 'string',
      `a fifth connection is closed unanswered (got ${refused})`,
    );
    assert.equal(await get(`${f.url}/`, '127.0.0.3'), 200, 'another address gets the page');

    held[0]!.destroy();
    await eventually(
      async () => (await get(`${f.url}/`, '127.0.0.2')) === 200,
      'a freed connection to be usable again',
    );
    for (const res of held) res.destroy();
  });

  it('is refused beyond the total however many addresses it uses', async () => {
    const held = await Promise.all(
      [
        '127.0.0.4',
        '127.0.0.4',
        '127.0.0.4',
        '127.0.0.4',
        '127.0.0.5',
        '127.0.0.5',
        '127.0.0.5',
        '127.0.0.5',
      ].map((a) => holdLive(f.url, a)),
    );
    for (const res of held) assert.equal(res.statusCode, 200);
    const refused = await get(`${f.url}/`, '127.0.0.6');
    assert.ok(
      typeof refused === 'string',
      `a ninth connection is closed unanswered (got ${refused})`,
    );
    for (const res of held) res.destroy();
    await eventually(
      async () => (await get(`${f.url}/`, '127.0.0.6')) === 200,
      'the page once the streams are closed',
    );
  });
});
