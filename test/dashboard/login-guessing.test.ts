import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { Browser } from 'playwright-core';
import { browserMissing, launchBrowser } from '../harness/browser.ts';
import { type DashboardFixture, dashboardFixture } from '../harness/dashboard-fixture.ts';

const RIGHT = 'bob-token-abcdefghijklmnop';
const YAML = 'dashboard:\n  require_login: true\nrepos:\n  app:\n    git_url: /srv/app.git\n';

interface LoginAnswer {
  status: number;
  retryAfter?: string;
  session?: string;
  body: string;
}

/** POST /login from `localAddress`, over a connection of its own. */
function login(url: string, token: string, localAddress: string): Promise<LoginAnswer> {
  const body = new URLSearchParams({ token, next: '/' }).toString();
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/login`,
      {
        method: 'POST',
        localAddress,
        agent: false,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            retryAfter: res.headers['retry-after'],
            session: /errand_session=([^;]+)/.exec(String(res.headers['set-cookie'] ?? ''))?.[1],
            body: text,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A logger whose lines the test can read. */
function capturedLog() {
  const lines: Array<{ msg: string; [k: string]: unknown }> = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        done();
      },
    }),
  );
  return { logger, lines };
}

const wrong = (n: number) => `wrong-token-${n}-abcdefghijklmnop`;

describe('a client guessing login tokens from one address', () => {
  let f: DashboardFixture;
  const log = capturedLog();
  before(async () => {
    f = await dashboardFixture({ yaml: YAML, tokens: { bob: RIGHT }, logger: log.logger });
  });
  after(() => f?.close());

  it('is refused its 11th wrong token with 429 and Retry-After, and then the right token too, while another address logs in', async () => {
    const first = await Promise.all(
      Array.from({ length: 10 }, (_, i) => login(f.url, wrong(i), '127.0.0.2')),
    );
    assert.deepEqual(
      first.map((a) => a.status),
      Array(10).fill(401),
      'ten wrong tokens are each checked and refused',
    );

    const eleventh = await login(f.url, wrong(10), '127.0.0.2');
    assert.equal(eleventh.status, 429);
    const wait = Number(eleventh.retryAfter);
    assert.ok(wait > 0 && wait <= 600, `Retry-After is within the 10-minute window (${wait})`);
    assert.match(eleventh.body, /Too many wrong tokens came from your address/);

    // Decided: once the budget is spent no token is checked, so a right guess teaches nothing.
    const right = await login(f.url, RIGHT, '127.0.0.2');
    assert.equal(right.status, 429);
    assert.equal(right.session, undefined, 'no session for the right token from that address');

    const other = await login(f.url, RIGHT, '127.0.0.3');
    assert.equal(other.status, 303, 'another address still logs in');
    assert.ok(other.session);

    const spent = log.lines.filter((l) => /dashboard logins from 127\.0\.0\.2 refused/.test(l.msg));
    assert.equal(spent.length, 1, 'one log line says the budget of that address is spent');
    assert.equal(spent[0]!.address, '127.0.0.2');
  });
});

describe('clients guessing login tokens from many addresses', () => {
  let f: DashboardFixture;
  const log = capturedLog();
  before(async () => {
    f = await dashboardFixture({ yaml: YAML, tokens: { bob: RIGHT }, logger: log.logger });
  });
  after(() => f?.close());

  it('are all refused once 100 wrong tokens came in, while a session opened before keeps working', async () => {
    const before = await login(f.url, RIGHT, '127.0.0.20');
    assert.equal(before.status, 303);

    // 9 from each of 11 addresses and 1 more: no address spends its own budget.
    const guesses = Array.from({ length: 100 }, (_, i) =>
      login(f.url, wrong(i), `127.0.1.${Math.floor(i / 9) + 1}`),
    );
    const answers = await Promise.all(guesses);
    assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([401]));

    const fresh = await login(f.url, RIGHT, '127.0.2.1');
    assert.equal(fresh.status, 429, 'a right token from an address never seen is refused too');
    assert.match(fresh.body, /Too many wrong tokens were tried/);
    assert.equal(fresh.session, undefined);
    assert.ok(log.lines.some((l) => /every dashboard login refused/.test(l.msg)));

    const page = await fetch(`${f.url}/`, {
      headers: { cookie: `errand_session=${before.session}` },
      redirect: 'manual',
    });
    assert.equal(page.status, 200, 'the session opened before the guessing still works');
  });
});

describe('a page of another site posting to the login form', () => {
  const skip = browserMissing();
  let f: DashboardFixture;
  let browser: Browser | undefined;
  let hostile: Server | undefined;
  const log = capturedLog();
  before(async () => {
    f = await dashboardFixture({ yaml: YAML, tokens: { bob: RIGHT }, logger: log.logger });
    if (skip) return;
    browser = await launchBrowser();
    // Another site (localhost, not 127.0.0.1): its page posts the token it is given.
    hostile = createServer((req, res) => {
      const token = new URL(req.url ?? '/', 'http://x').searchParams.get('token') ?? '';
      res.setHeader('content-type', 'text/html');
      res.end(
        `<form method="post" action="${f.url}/login"><input name="token" value="${token}"><input name="next" value="/"></form><script>document.forms[0].submit()</script>`,
      );
    });
    await new Promise<void>((resolve) => hostile!.listen(0, '127.0.0.1', resolve));
  });
  after(async () => {
    await browser?.close();
    hostile?.close();
    await f?.close();
  });

  it('neither spends the login budget of its visitors nor logs them in', { skip }, async () => {
    // Every visitor of a hostile page would otherwise guess for it, from their own address
    // (the dashboard of an office network is reached by its people's browsers), and its
    // forms could log a visitor in as someone else (login CSRF).
    const context = await browser!.newContext();
    const page = await context.newPage();
    const port = (hostile!.address() as AddressInfo).port;
    const visit = async (token: string) => {
      await page.goto(`http://localhost:${port}/?token=${token}`);
      await page.waitForURL(`${f.url}/**`);
      await page.waitForLoadState();
    };
    for (let i = 0; i < 12; i++) await visit(wrong(i));
    assert.equal(
      log.lines.filter((l) => l.msg === 'dashboard login refused').length,
      0,
      'a token from another site was checked',
    );
    await visit(RIGHT);
    const cookies = await context.cookies(f.url);
    assert.deepEqual(
      cookies.filter((c) => c.name === 'errand_session'),
      [],
      'another site logged the visitor in',
    );
    // The visitor's own login, from the dashboard's page, still works.
    await page.goto(`${f.url}/login`);
    await page.fill('#token', RIGHT);
    await Promise.all([page.waitForURL(`${f.url}/`), page.click('button[type=submit]')]);
    assert.equal(
      (await context.cookies(f.url)).filter((c) => c.name === 'errand_session').length,
      1,
    );
    await context.close();
  });
});
