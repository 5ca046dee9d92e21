import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sandboxClaudeCli } from '../../src/sandbox/index.ts';

// Sandboxes mount the CLI from the sandbox folder, not from errand's cache: a container's
// mount table shows where each mount comes from.
const VERSION = '9.9.9';
let root: string;
let cache: string;
let cached: string;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'errand-cli-copy-'));
  cache = join(root, 'cache');
  const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
  const pkg = join(cache, 'claude-code', VERSION, 'node_modules', '@anthropic-ai');
  cached = join(pkg, `claude-code-linux-${arch}`, 'claude');
  mkdirSync(join(cached, '..'), { recursive: true });
  writeFileSync(cached, '#!/bin/sh\necho cached\n', { mode: 0o755 });
});
after(() => rmSync(root, { recursive: true, force: true }));

const otherFileSystem = (): string | undefined => {
  if (!existsSync('/dev/shm')) return undefined;
  return statSync('/dev/shm').dev === statSync(tmpdir()).dev ? undefined : '/dev/shm';
};

describe('the Claude Code CLI in the sandbox folder', () => {
  it('is a hardlink of the cached binary on the same file system', async () => {
    const sandboxes = join(root, 'sandboxes');
    const path = await sandboxClaudeCli(cache, sandboxes, VERSION);
    assert.equal(path, join(sandboxes, 'tools', `claude-${VERSION}`));
    assert.equal(statSync(path).ino, statSync(cached).ino);
    assert.equal(await sandboxClaudeCli(cache, sandboxes, VERSION), path);
    assert.deepEqual(readdirSync(join(sandboxes, 'tools')), [`claude-${VERSION}`]);
  });

  it('is one executable copy on another file system, made aside and renamed into place', {
    skip: otherFileSystem() ? undefined : 'no second file system (/dev/shm) here',
  }, async () => {
    const sandboxes = mkdtempSync(join(otherFileSystem()!, 'errand-cli-copy-'));
    try {
      const path = await sandboxClaudeCli(cache, sandboxes, VERSION);
      assert.notEqual(statSync(path).dev, statSync(cached).dev);
      assert.equal(readFileSync(path, 'utf8'), readFileSync(cached, 'utf8'));
      assert.equal(statSync(path).mode & 0o777, 0o555);
      assert.deepEqual(readdirSync(join(sandboxes, 'tools')), [`claude-${VERSION}`]);
    } finally {
      rmSync(sandboxes, { recursive: true, force: true });
    }
  });

  it('refuses a version that is not one', async () => {
    const sandboxes = join(root, 'refused');
    await assert.rejects(
      sandboxClaudeCli(cache, sandboxes, '../../x'),
      /invalid Claude Code version/,
    );
    assert.equal(existsSync(sandboxes), false);
  });
});
