import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, it } from 'node:test';
import { type Fixture, fixture, sh } from './origin-repo.ts';

let f: Fixture;
let log: string;
beforeEach(async () => {
  f = fixture();
  await f.ws.refreshMirror(f.repo);
  // Every fetch from a local origin starts one upload-pack: count them with a wrapper.
  log = join(f.root, 'upload-pack.log');
  const wrapper = join(f.root, 'upload-pack.sh');
  writeFileSync(
    wrapper,
    `#!/bin/sh\necho fetch >> '${log}'\nsleep 0.2\nexec git upload-pack "$@"\n`,
    {
      mode: 0o755,
    },
  );
  writeFileSync(log, '');
  sh(f.ws.mirrorPath('app'), 'config', 'remote.origin.uploadpack', wrapper);
});
afterEach(() => f.cleanup());

const fetches = () => readFileSync(log, 'utf8').split('\n').filter(Boolean).length;

it('runs one fetch for five concurrent refreshes of the same repository', async () => {
  const results = await Promise.all(Array.from({ length: 5 }, () => f.ws.refreshMirror(f.repo)));
  assert.equal(fetches(), 1);
  assert.equal(new Set(results.map((r) => r.commit)).size, 1);
});

it('runs a new fetch for a refresh that starts after the previous one ended', async () => {
  await f.ws.refreshMirror(f.repo);
  await f.ws.refreshMirror(f.repo);
  assert.equal(fetches(), 2);
});
