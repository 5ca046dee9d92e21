import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  BASE_IMAGE,
  containerFolders,
  ensurePodmanEnv,
  ImageCache,
  runContainer,
  runPodman,
} from '../../src/sandbox/index.ts';
import { Workspaces } from '../../src/workspace/index.ts';
import { git } from '../harness/git.ts';

let root: string;
let env: NodeJS.ProcessEnv;
const built = new Set<string>();

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'errand-img-'));
  env = await ensurePodmanEnv(join(root, 'state'));
});
after(async () => {
  for (const image of built) await runPodman(['rmi', '--force', image], { env });
  rmSync(root, { recursive: true, force: true });
});

function context(name: string, containerfile: string, file = 'Containerfile'): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, file), containerfile);
  return dir;
}

async function marker(image: string): Promise<string> {
  let out = '';
  await runContainer(
    {
      image,
      name: `errand-img-test-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`,
      command: ['cat', '/marker'],
      mounts: [],
      env: {},
      limits: {},
      network: { kind: 'none' },
      onStdout: (c) => (out += c),
    },
    env,
    containerFolders(join(root, 'state'), join(root, 'sandboxes')),
  );
  return out.trim();
}

describe('the image cache', () => {
  it('builds an image once for concurrent tasks and reuses it', async () => {
    const unique = `concurrent-${process.pid}-${Date.now()}`;
    const ctx = context('a', `FROM ${BASE_IMAGE}\nRUN echo ${unique} > /marker\n`);
    const cache = new ImageCache({ podmanEnv: env, maxAgeMs: 3_600_000 });
    const results = await Promise.all([cache.ensure(ctx), cache.ensure(ctx), cache.ensure(ctx)]);
    assert.equal(cache.builds, 1);
    for (const r of results) assert.ok(r.ok, JSON.stringify(r));
    const image = results[0]!.ok ? results[0]!.image : '';
    built.add(image);
    assert.equal(new Set(results.map((r) => (r.ok ? r.image : ''))).size, 1);
    assert.equal(await marker(image), unique);
    const again = await cache.ensure(ctx);
    assert.ok(again.ok && !again.built, 'a cached image is not rebuilt');
    assert.equal(cache.builds, 1);
  });

  it('rebuilds an image older than its maximum age', async () => {
    const ctx = context('b', `FROM ${BASE_IMAGE}\nRUN echo aged-${process.pid} > /marker\n`);
    const fresh = new ImageCache({ podmanEnv: env, maxAgeMs: 3_600_000 });
    const first = await fresh.ensure(ctx);
    assert.ok(first.ok);
    built.add(first.image);
    const strict = new ImageCache({ podmanEnv: env, maxAgeMs: 0 });
    const second = await strict.ensure(ctx);
    assert.ok(second.ok && second.built);
  });

  it('accepts a Dockerfile and reports a failing build with its output', async () => {
    const ctx = context(
      'c',
      `FROM ${BASE_IMAGE}\nRUN echo about to fail && exit 3\n`,
      'Dockerfile',
    );
    const r = await new ImageCache({ podmanEnv: env, maxAgeMs: 3_600_000 }).ensure(ctx);
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.reason, /podman build failed/);
    assert.match(r.log, /about to fail/);
    const none = await new ImageCache({ podmanEnv: env, maxAgeMs: 1 }).ensure(
      context('d', 'x', 'README'),
    );
    assert.equal(none.ok, false);
    assert.match(
      none.ok ? '' : none.reason,
      /no Containerfile or Dockerfile in \.errand\/container/,
    );
  });

  it('builds from the default branch: a merged change is picked up, a workspace-only change is not', async () => {
    const origin = join(root, 'origin');
    mkdirSync(join(origin, '.errand', 'container'), { recursive: true });
    const g = git;
    const setMarker = (dir: string, text: string) =>
      writeFileSync(
        join(dir, '.errand', 'container', 'Containerfile'),
        `FROM ${BASE_IMAGE}\nRUN echo ${text} > /marker\n`,
      );
    g(origin, 'init', '-q', '-b', 'main');
    setMarker(origin, `trusted-${process.pid}`);
    g(origin, 'add', '-A');
    g(origin, 'commit', '-q', '-m', 'init');
    const ws = new Workspaces({ root: join(root, 'ws') });
    const repo = { id: 'app', gitUrl: origin };
    const cache = new ImageCache({ podmanEnv: env, maxAgeMs: 3_600_000 });
    const imageOf = async (n: string) => {
      const at = await ws.refreshMirror(repo);
      const ctx = join(root, `ctx-${n}`);
      await ws.extractTrustedDir(repo, at, '.errand/container', ctx);
      const r = await cache.ensure(ctx);
      assert.ok(r.ok, JSON.stringify(r));
      built.add(r.image);
      return r.image;
    };
    assert.equal(await marker(await imageOf('1')), `trusted-${process.pid}`);

    const { dirs } = await ws.prepareConversation(repo, 'c_1');
    setMarker(dirs.workspace, 'agent-edit');
    g(dirs.workspace, 'commit', '-q', '-am', 'agent changes its own image');
    assert.equal(
      await marker(await imageOf('2')),
      `trusted-${process.pid}`,
      'a workspace change has no effect',
    );

    setMarker(origin, `merged-${process.pid}`);
    g(origin, 'commit', '-q', '-am', 'merged change');
    assert.equal(
      await marker(await imageOf('3')),
      `merged-${process.pid}`,
      'a merged change is picked up',
    );
  });
});

describe('pruning images', () => {
  it("removes this installation's images past the age, keeps newer ones and other installations'", async () => {
    const mineCtx = context(
      'prune-mine',
      `FROM ${BASE_IMAGE}\nRUN echo prune-mine-${process.pid} > /marker\n`,
    );
    const theirsCtx = context(
      'prune-theirs',
      `FROM ${BASE_IMAGE}\nRUN echo prune-theirs-${process.pid} > /marker\n`,
    );
    const mine = new ImageCache({
      podmanEnv: env,
      maxAgeMs: 3_600_000,
      owner: `mine-${process.pid}`,
    });
    const theirs = new ImageCache({
      podmanEnv: env,
      maxAgeMs: 3_600_000,
      owner: `theirs-${process.pid}`,
    });
    const a = await mine.ensure(mineCtx);
    const b = await theirs.ensure(theirsCtx);
    assert.ok(a.ok && b.ok);
    built.add(a.image);
    built.add(b.image);
    assert.deepEqual(await mine.prune(3_600_000), [], 'a fresh image stays');
    await new Promise((r) => setTimeout(r, 1100));
    assert.deepEqual(await mine.prune(0), [a.image]);
    const exists = async (image: string) =>
      (await runPodman(['image', 'exists', image], { env })).code === 0;
    assert.equal(await exists(a.image), false);
    assert.equal(await exists(b.image), true, "another installation's image is not touched");
  });
});
