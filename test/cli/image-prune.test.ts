import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BASE_IMAGE, ensurePodmanEnv, runPodman } from '../../src/sandbox/index.ts';
import { freePort, startErrand, tempHome } from '../harness/cli.ts';

// Images as errand's image cache labels them: `errand.owner` names the installation (after
// its state folder, as the podman driver does). `--timestamp 0` makes one look built in 1970.
describe('sandbox images are pruned by errand start', () => {
  const { home, env } = tempHome();
  const state = join(home, 'state');
  const owner = `gw-${createHash('sha256').update(state).digest('hex').slice(0, 12)}`;
  const tag = (what: string) => `localhost/errand-sandbox:prune-${what}-${process.pid}`;
  let podmanEnv: NodeJS.ProcessEnv;

  async function build(what: string, opts: { old: boolean; label?: string }): Promise<string> {
    const ctx = mkdtempSync(join(home, 'ctx-'));
    writeFileSync(join(ctx, 'Containerfile'), `FROM ${BASE_IMAGE}\nLABEL errand.test=${what}\n`);
    const r = await runPodman(
      [
        'build',
        '-q',
        ...(opts.old ? ['--timestamp', '0'] : []),
        ...(opts.label ? ['--label', `errand.owner=${opts.label}`] : []),
        '--tag',
        tag(what),
        ctx,
      ],
      { env: podmanEnv, timeoutMs: 120_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    return tag(what);
  }
  const exists = async (image: string) =>
    (await runPodman(['image', 'exists', image], { env: podmanEnv })).code === 0;

  async function startWith(extra: string, until: RegExp) {
    const path = join(home, 'errand.yaml');
    writeFileSync(
      path,
      `dashboard:\n  port: ${await freePort()}\nexecution:\n  state_dir: ${state}\n${extra}`,
      { mode: 0o600 },
    );
    const errand = await startErrand(['--config', path], {
      env: { ...env, ERRAND_LOG_LEVEL: 'info' },
      cwd: home,
    });
    try {
      const deadline = Date.now() + 60_000;
      while (!until.test(errand.stderr()) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 100));
      assert.match(errand.stderr(), until);
    } finally {
      assert.equal(await errand.stop(), 0, errand.stderr());
    }
  }

  before(async () => {
    podmanEnv = await ensurePodmanEnv(state);
  });
  after(async () => {
    for (const w of ['old', 'fresh', 'foreign', 'kept'])
      await runPodman(['rmi', '-f', tag(w)], { env: podmanEnv });
    rmSync(home, { recursive: true, force: true });
  });

  it("removes an old image of its own at start, and leaves a recent one and another installation's", async () => {
    const old = await build('old', { old: true, label: owner });
    const fresh = await build('fresh', { old: false, label: owner });
    const foreign = await build('foreign', { old: true, label: 'gw-someoneelse' });
    await startWith('', /sandbox images pruned: 1 removed/);
    assert.equal(await exists(old), false, 'the old image of this installation is gone');
    assert.equal(await exists(fresh), true, 'a recent image stays');
    assert.equal(await exists(foreign), true, "another installation's old image stays");
  });

  it('keeps old images with sandbox.image_prune: false', async () => {
    const kept = await build('kept', { old: true, label: owner });
    await startWith('sandbox:\n  image_prune: false\n', /sandbox image pruning is off/);
    assert.equal(await exists(kept), true);
  });
});
