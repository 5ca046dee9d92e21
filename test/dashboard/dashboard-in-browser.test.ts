import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { browserMissing, launchBrowser } from '../harness/browser.ts';
import { type DashboardFixture, dashboardFixture } from '../harness/dashboard-fixture.ts';
import { LiveExecutor } from '../harness/live-executor.ts';

const skip = browserMissing();

/** Waits until an element matching `selector` (and containing `text`) is on the page. */
async function shows(page: Page, selector: string, text?: string | RegExp): Promise<void> {
  await page
    .locator(selector, text ? { hasText: text } : {})
    .first()
    .waitFor({ timeout: 10_000 });
}

describe('the dashboard in Chromium, on loopback', { skip }, () => {
  let browser: Browser;
  let f: DashboardFixture;
  const executor = new LiveExecutor();
  before(async () => {
    [browser, f] = await Promise.all([launchBrowser(), dashboardFixture({ executor })]);
  });
  after(async () => {
    await browser?.close();
    await f?.close();
  });

  it('starts a task from the form, shows its events live, and stops it after confirming', async () => {
    const page = await browser.newPage();
    await page.goto(`${f.url}/`);
    await page.fill('textarea[name=text]', 'a slow job');
    await page.click('form.new-task button[type=submit]');
    await page.waitForURL(/\/conversations\/c_/);
    await page.click('.task summary a');
    await page.waitForURL(/\/tasks\/t_/);
    const initial = await page.locator('#timeline .ev').count();
    // New events arrive over SSE without a reload.
    await page
      .locator('#timeline .ev')
      .nth(initial + 2)
      .waitFor({ timeout: 10_000 });
    assert.match(await page.locator('#plan').innerText(), /Fix the bug/);
    assert.match(await page.locator('#timeline').innerText(), /Bash\s+npm test/);
    let asked = '';
    page.once('dialog', (d) => {
      asked = d.message();
      void d.accept();
    });
    await page.click('form.stop button');
    await shows(page, '#task-state', /^stopped$/);
    assert.match(asked, /Stop it\?/);
    await page.close();
  });

  it('continues the conversation from the reply box and shows the answer and the network log', async () => {
    const page = await browser.newPage();
    await page.goto(`${f.url}/`);
    await page.click('.conversations a');
    await page.waitForURL(/\/conversations\/c_/);
    await page.fill('form.reply textarea', 'a quick follow-up');
    await page.click('form.reply button');
    await shows(page, '.thread', 'Done: a quick follow-up');
    assert.equal(executor.runs.at(-1)!.conversation.id, executor.runs[0]!.conversation.id);
    const network = await page.locator('table.network').innerText();
    assert.match(
      network,
      /blocked\s+host_not_allowed\s+POST\s+https:\/\/evil\.example\/upload\s+403/,
    );
    assert.match(network, /GH_TOKEN/);
    await page.close();
  });

  it('shows the answer of a task started elsewhere without a reload', async () => {
    const page = await browser.newPage();
    await page.goto(`${f.url}/`);
    await fetch(`${f.url}/api/repos/app/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${f.controlToken}` },
      body: JSON.stringify({ text: 'started by a script' }),
    });
    await shows(page, '.conversations', 'started by a script');
    await page.close();
  });
});

describe('the dashboard in Chromium, with a login', { skip }, () => {
  let browser: Browser;
  let f: DashboardFixture;
  before(async () => {
    [browser, f] = await Promise.all([
      launchBrowser(),
      dashboardFixture({
        yaml: 'dashboard:\n  require_login: true\nrepos:\n  app:\n    git_url: /srv/app.git\n',
        tokens: { alice: 'alice-login-token-1234567890' },
        executor: new LiveExecutor(),
      }),
    ]);
  });
  after(async () => {
    await browser?.close();
    await f?.close();
  });

  it('asks for a token, refuses a wrong one, logs in and out', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${f.url}/repos`);
    await page.waitForURL(/\/login\?next=%2Frepos/);
    await page.fill('#token', 'wrong-token');
    await page.click('button[type=submit]');
    assert.match(await page.locator('.error').innerText(), /not valid/);
    await page.fill('#token', 'alice-login-token-1234567890');
    await page.click('button[type=submit]');
    await page.waitForURL(`${f.url}/repos`);
    assert.match(await page.locator('header .who').innerText(), /alice/);
    const [cookie] = await context.cookies();
    assert.equal(cookie!.httpOnly, true);
    assert.equal(cookie!.sameSite, 'Strict');
    // A task started here is sent as the logged-in user.
    await page.goto(`${f.url}/`);
    await page.fill('textarea[name=text]', 'as alice');
    await page.click('form.new-task button[type=submit]');
    await page.waitForURL(/\/conversations\/c_/);
    assert.match(await page.locator('.msg.person header').first().innerText(), /alice/);
    await page.click('header button.link');
    await page.waitForURL(/\/login/);
    await page.goto(`${f.url}/`);
    await page.waitForURL(/\/login/);
    await context.close();
  });
});
