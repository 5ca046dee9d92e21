import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MIN_NODE_TEXT, nodeTooOld, nodeVersionProblem } from '../../src/cli/node-version.ts';
import { tempHome } from '../harness/cli.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A node on PATH older than errand needs (a system Node 20, say), if there is one. */
function olderNode(): { path: string; version: string } | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const path = join(dir, 'node');
    if (!dir || !existsSync(path)) continue;
    const version = spawnSync(path, ['-p', 'process.versions.node'], {
      encoding: 'utf8',
    }).stdout?.trim();
    if (version && nodeTooOld(version)) return { path, version };
  }
  return undefined;
}

describe('the Node version errand needs', () => {
  it('names the version found and the one needed', () => {
    const problem = nodeVersionProblem('22.17.1');
    assert.match(problem!, /needs Node 22\.18 or newer.*this is Node 22\.17\.1/);
    assert.equal(nodeVersionProblem('22.18.0'), undefined);
    assert.equal(nodeVersionProblem('24.0.0'), undefined);
    assert.equal(nodeTooOld('20.20.2'), true);
    assert.equal(nodeTooOld('23.0.0'), false);
  });

  it('package.json and README state the same minimum', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    assert.equal(pkg.engines.node, `>=${MIN_NODE_TEXT}`);
    assert.match(
      readFileSync(join(ROOT, 'README.md'), 'utf8'),
      new RegExp(`Node ${MIN_NODE_TEXT}`),
    );
  });

  describe('the installed command (dist/)', () => {
    const old = olderNode();
    let dir: string;
    before(() => {
      // Built as npm run build builds it, beside a link to the dependencies.
      dir = mkdtempSync(join(tmpdir(), 'errand-dist-'));
      copyFileSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
      symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
      execFileSync(
        process.execPath,
        [
          join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
          '-p',
          join(ROOT, 'tsconfig.build.json'),
          '--outDir',
          join(dir, 'dist'),
          '--sourceMap',
          'false',
        ],
        { stdio: 'inherit' },
      );
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it('on an older Node says which version it found and which it needs, and exits 1', {
      skip: old ? false : 'no Node older than the minimum on PATH',
    }, () => {
      const { env } = tempHome();
      const r = spawnSync(old!.path, [join(dir, 'dist', 'cli', 'errand.js'), 'status'], {
        env,
        encoding: 'utf8',
      });
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line, no stack trace: ${r.stderr}`);
      assert.match(
        r.stderr,
        new RegExp(
          `needs Node ${MIN_NODE_TEXT.replace('.', '\\.')} or newer .*this is Node ${old!.version.replaceAll('.', '\\.')}`,
        ),
      );
    });

    it('runs on this Node', () => {
      const { env } = tempHome();
      const r = spawnSync(process.execPath, [join(dir, 'dist', 'cli', 'errand.js'), '--version'], {
        env,
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^\d+\.\d+\.\d+/);
    });
  });
});
