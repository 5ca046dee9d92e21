import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
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

  it('never appear in the error when git quotes them without the URL around them', async () => {
    // git:// has no userinfo: git looks up "user:token@host" as a host name and says so.
    const quoted = {
      id: 'quoted',
      gitUrl: 'git://x-access-token:ghs_QuotedToken42@127.0.0.1:1/x.git',
    };
    await assert.rejects(f.ws.refreshMirror(quoted), (e: Error) => {
      assert.doesNotMatch(e.message, /ghs_QuotedToken42/);
      assert.match(
        e.message,
        /git clone --mirror failed for repository quoted: .*\*\*\*@127\.0\.0\.1/,
      );
      return true;
    });
  });

  it('never appear in the error of a failed fetch that quotes them without the URL', async () => {
    await f.ws.refreshMirror({ id: 'quoted', gitUrl: f.origin });
    const quoted = {
      id: 'quoted',
      gitUrl: 'git://x-access-token:ghs_QuotedToken43@127.0.0.1:1/x.git',
    };
    await assert.rejects(f.ws.refreshMirror(quoted), (e: Error) => {
      assert.doesNotMatch(e.message, /ghs_QuotedToken43/);
      assert.match(e.message, /git fetch --prune failed for repository quoted/);
      return true;
    });
  });

  it('are refused when the URL would be read as a git option', async () => {
    await assert.rejects(f.ws.refreshMirror({ id: 'x', gitUrl: '--upload-pack=touch /tmp/p' }), {
      code: 'config_invalid',
    });
  });
});
