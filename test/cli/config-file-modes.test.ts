import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cli, freePort, gitCheckout, startErrand, tempHome } from '../harness/cli.ts';

const SECRET = 'ghp_DotenvSecretValue0123456789';

/** The uid and gid of the unprivileged CI user, when there is one. */
function otherUser(): { uid: number; gid: number } | undefined {
  const id = (flag: string) => spawnSync('id', [flag, 'errand-ci'], { encoding: 'utf8' });
  const [u, g] = [id('-u'), id('-g')];
  return u.status === 0 && g.status === 0
    ? { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) }
    : undefined;
}

function withConfig(
  write: (home: string) => string,
  body: (path: string, env: NodeJS.ProcessEnv, home: string) => Promise<void>,
): () => Promise<void> {
  return async () => {
    const { home, env } = tempHome();
    try {
      await body(write(home), env, home);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  };
}

/** A config that reads its GH token from .env beside it. */
function dotenvConfig(home: string, mode: number): string {
  const path = join(home, 'errand.yaml');
  writeFileSync(
    path,
    'repos:\n  app:\n    git_url: /srv/app.git\n    masked_secrets:\n      GH_TOKEN: { value: !env GH_TOKEN, hosts: [api.github.com] }\n',
    { mode: 0o600 },
  );
  chmodSync(path, 0o600);
  writeFileSync(join(home, '.env'), `GH_TOKEN=${SECRET}\n`);
  chmodSync(join(home, '.env'), mode);
  return path;
}

describe('files errand reads credentials from', () => {
  it(
    'a .env others can read makes errand start refuse, naming the file and the chmod that fixes it',
    withConfig(
      (home) => dotenvConfig(home, 0o644),
      async (path, env, home) => {
        const r = await cli(['start', '--config', path], { env, cwd: home });
        assert.equal(r.code, 3, r.stderr);
        const dotenv = join(home, '.env');
        assert.match(r.stderr, new RegExp(`${dotenv} is readable by other users \\(mode 644\\)`));
        assert.ok(r.stderr.includes(`Fix it with: chmod 600 ${dotenv}`), r.stderr);
        assert.ok(!r.stderr.includes(SECRET), 'the value is not printed');
        assert.doesNotMatch(r.stdout, /is running/);
      },
    ),
  );

  it(
    'a private .env is read (the neighbour of the refusal)',
    withConfig(
      (home) => dotenvConfig(home, 0o600),
      async (path, env, home) => {
        const r = await cli(['conversations', 'list', '--config', path], { env, cwd: home });
        assert.equal(r.code, 0, r.stderr);
      },
    ),
  );

  it(
    'a .env of another user is refused, even one only its owner can read, with the chown that fixes it',
    {
      skip:
        process.getuid?.() !== 0
          ? 'needs root, to give the file to another user'
          : otherUser() === undefined
            ? 'needs the user errand-ci (useradd -m errand-ci)'
            : false,
    },
    withConfig(
      (home) => dotenvConfig(home, 0o600),
      async (path, env, home) => {
        const dotenv = join(home, '.env');
        const other = otherUser()!;
        chownSync(dotenv, other.uid, other.gid);
        const r = await cli(['start', '--config', path], { env, cwd: home });
        assert.equal(r.code, 3, r.stderr);
        assert.match(
          r.stderr,
          new RegExp(`${dotenv} belongs to another user \\(uid ${other.uid}\\)`),
        );
        assert.match(
          r.stderr,
          new RegExp(`Fix it with: chown \\S+ ${dotenv} && chmod 600 ${dotenv}`),
        );
        assert.ok(!r.stderr.includes(SECRET));
      },
    ),
  );

  it(
    'an errand.yaml others can read gets a warning on start and in errand check, naming the file, its mode and the chmod',
    withConfig(
      (home) => join(home, 'errand.yaml'),
      async (path, env, home) => {
        const port = await freePort();
        writeFileSync(
          path,
          `dashboard:\n  port: ${port}\nrepos:\n  app:\n    git_url: ${gitCheckout(home)}\n`,
        );
        chmodSync(path, 0o644);
        const warning = new RegExp(
          `${path} is readable by other users \\(mode 644\\): credentials written in it inline .*Fix it with: chmod 600 ${path}`,
        );
        const errand = await startErrand(['--config', path], { env, cwd: home });
        try {
          assert.match(errand.stderr(), warning);
          // Answered once errand handles signals: a SIGTERM sent on its first line of
          // output could come before that.
          assert.equal((await fetch(`http://127.0.0.1:${port}/api/health`)).status, 200);
        } finally {
          assert.equal(await errand.stop(), 0, errand.stderr());
        }
        const check = await cli(['check', '--config', path], {
          env,
          cwd: home,
          timeoutMs: 300_000,
        });
        assert.match(
          check.stdout,
          new RegExp(
            `! the config file is valid: ${path} is valid, but ${path} is readable by other users \\(mode 644\\)`,
          ),
        );
        assert.ok(check.stdout.includes(`fix: chmod 600 ${path}`), check.stdout);

        chmodSync(path, 0o600);
        const quiet = await cli(['check', '--config', path, '--json'], {
          env,
          cwd: home,
          timeoutMs: 300_000,
        });
        const config = (JSON.parse(quiet.stdout) as Array<{ id: string; status: string }>).find(
          (c) => c.id === 'config',
        );
        assert.equal(config?.status, 'ok', 'a private config gets no warning');
      },
    ),
  );

  it(
    'errand init writes the config and the secrets file mode 0600, also over an existing config',
    withConfig(
      (home) => join(home, '.config', 'errand', 'errand.yaml'),
      async (path, env, home) => {
        const project = gitCheckout(home);
        assert.equal((await cli(['init'], { env, cwd: project })).code, 0);
        assert.equal(statSync(path).mode & 0o777, 0o600);
        assert.equal(statSync(join(home, '.config', 'errand', 'secrets.env')).mode & 0o777, 0o600);
        chmodSync(path, 0o644);
        assert.equal((await cli(['init', '--force'], { env, cwd: project })).code, 0);
        assert.equal(statSync(path).mode & 0o777, 0o600);
      },
    ),
  );
});
