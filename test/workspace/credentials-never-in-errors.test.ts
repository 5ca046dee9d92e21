import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { redactUrl } from '../../src/workspace/index.ts';
import { type Fixture, fixture } from './origin-repo.ts';

describe('credentials in a git URL', () => {
  let f: Fixture;
  beforeEach(() => {
    f = fixture();
  });
  afterEach(() => f.cleanup());

  const bad = { id: 'bad', gitUrl: 'https://user:s3cr3tpass@127.0.0.1:9/x.git' };

  it('never appear in the error of a failed mirror clone, which names the repository and step', async () => {
    await assert.rejects(f.ws.refreshMirror(bad), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'git_failed');
      assert.doesNotMatch(e.message, /s3cr3tpass/);
      assert.doesNotMatch(String(e.stack), /s3cr3tpass/);
      assert.equal(e.cause, undefined);
      assert.match(e.message, /git clone --mirror failed for repository bad/);
      assert.match(e.message, /repos\.bad\.git_url/);
      return true;
    });
  });

  it('never appear in the error of a failed fetch', async () => {
    await f.ws.refreshMirror({ ...bad, gitUrl: f.origin });
    await assert.rejects(f.ws.refreshMirror(bad), (e: Error) => {
      assert.doesNotMatch(e.message, /s3cr3tpass/);
      assert.match(e.message, /git fetch --prune failed for repository bad/);
      return true;
    });
  });

  it('are refused when the URL would be read as a git option', async () => {
    await assert.rejects(f.ws.refreshMirror({ id: 'x', gitUrl: '--upload-pack=touch /tmp/p' }), {
      code: 'config_invalid',
    });
  });
});

describe('redactUrl', () => {
  const rows: [string, string][] = [
    ['https://user:tok@host/x.git', 'https://***@host/x.git'],
    ['https://tok@host/x.git', 'https://***@host/x.git'],
    ['https://u:p@ss@host/x.git', 'https://***@host/x.git'],
    ["fatal: unable to access 'http://a:b@h:9/x/'", "fatal: unable to access 'http://***@h:9/x/'"],
    ['https://host/x.git', 'https://host/x.git'],
    ['git@github.com:org/x.git', 'git@github.com:org/x.git'],
    ['/srv/git/x.git', '/srv/git/x.git'],
  ];
  for (const [input, output] of rows) {
    it(`turns ${input} into ${output}`, () => {
      assert.equal(redactUrl(input), output);
    });
  }
});
