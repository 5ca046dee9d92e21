/**
 * Regenerates the dashboard screenshots in docs/screenshots/ from a dashboard with sample
 * tasks (the test harness's gateway, web channel and a scripted agent), in Chromium.
 *
 *   bash scripts/node.sh scripts/screenshots.ts
 */
import { join } from 'node:path';
import { launchBrowser } from '../test/harness/browser.ts';
import { dashboardFixture } from '../test/harness/dashboard-fixture.ts';
import { eventually } from '../test/harness/gateway-fixture.ts';
import { LiveExecutor } from '../test/harness/live-executor.ts';

const out = join(import.meta.dirname, '..', 'docs', 'screenshots');
const f = await dashboardFixture({ executor: new LiveExecutor() });
const browser = await launchBrowser();
try {
  const post = (text: string) =>
    fetch(`${f.url}/api/repos/app/tasks`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${f.controlToken}`,
        'content-type': 'application/json',
        'x-errand-user': 'alice',
      },
      body: JSON.stringify({ text }),
    });
  await post('Why does the CI job `lint` fail on main? Fix it if it is simple.');
  await post('Bump the minimum Node version to 22.18 and update the README.');
  await new Promise((r) => setTimeout(r, 300));
  await post('A slow job: refactor the config loader into smaller modules.');
  const running = await eventually(async () => {
    const t = await f.store.listTasks({ states: ['running'] });
    return t[0];
  }, 'the running task');
  await new Promise((r) => setTimeout(r, 1500));
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const shot = async (path: string, name: string) => {
    await page.goto(`${f.url}${path}`);
    await page.screenshot({ path: join(out, name), fullPage: false });
  };
  await shot('/', 'overview.png');
  await shot(`/tasks/${running.id}`, 'task.png');
  const [done] = await f.store.listConversations({});
  const conversations = await f.store.listConversations({});
  const finished = conversations.find((c) => c.id !== running.conversationId) ?? done!;
  await shot(`/conversations/${finished.id}`, 'conversation.png');
  await shot('/repos', 'repositories.png');
  const phone = await browser.newPage({ viewport: { width: 390, height: 800 } });
  await phone.goto(`${f.url}/`);
  await phone.screenshot({ path: join(out, 'overview-phone.png') });
  await f.gateway.stop(running.id, 'alice');
  console.log(`screenshots written to ${out}`);
} finally {
  await browser.close();
  await f.close();
}
