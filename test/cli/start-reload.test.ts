import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { freePort, gitCheckout, startErrand, tempHome } from '../harness/cli.ts';

async function repos(port: number): Promise<string[]> {
  const h = (await (await fetch(`http://127.0.0.1:${port}/api/health`)).json()) as {
    channels: Array<{ repo: string }>;
  };
  return h.channels.map((c) => c.repo).sort();
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('a running errand', () => {
  it('applies an edited config file, keeps running on an invalid edit, and reloads on SIGHUP', async () => {
    const { home, env } = tempHome();
    const project = gitCheckout(home);
    const port = await freePort();
    const path = join(home, 'errand.yaml');
    const config = (extra: string) =>
      `dashboard:\n  port: ${port}\nrepos:\n  one:\n    git_url: ${project}\n${extra}`;
    writeFileSync(path, config(''));
    const errand = await startErrand(['--config', path], {
      env: { ...env, ERRAND_LOG_LEVEL: 'info' },
      cwd: home,
    });
    try {
      assert.deepEqual(await repos(port), ['one']);
      writeFileSync(path, config(`  two:\n    git_url: ${project}\n`));
      await until('repository two to appear', async () => (await repos(port)).includes('two'));

      writeFileSync(path, config('  three:\n    git_urll: typo\n'));
      await until('the invalid edit to be reported', async () =>
        /config change ignored/.test(errand.stderr()),
      );
      assert.match(errand.stderr(), /repos\.three\.git_urll/);
      assert.deepEqual(await repos(port), ['one', 'two'], 'the running config stays');

      errand.child.kill('SIGHUP');
      await until('a reload by SIGHUP', async () =>
        /"why":"SIGHUP".*config change ignored/.test(errand.stderr()),
      );
      writeFileSync(path, config(`  four:\n    git_url: ${project}\n`));
      await until('repository four to appear', async () => (await repos(port)).includes('four'));
      errand.child.kill('SIGHUP');
      await until('a reload by SIGHUP', async () =>
        /"why":"SIGHUP","msg":"config reloaded"/.test(errand.stderr()),
      );
    } finally {
      assert.equal(await errand.stop(), 0, errand.stderr());
      rmSync(home, { recursive: true, force: true });
    }
  });
});
