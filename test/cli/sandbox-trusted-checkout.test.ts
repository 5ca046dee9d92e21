import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BASE_IMAGE } from '../../src/sandbox/index.ts';
import { cli, tempHome } from '../harness/cli.ts';
import { commit, commitBlobNames, git } from '../harness/git.ts';
import { ALIAS_BOMB, DEEP_NESTING, OVERSIZED_SANDBOX_FILE } from '../harness/hostile-yaml.ts';

// What `errand sandbox run` trusts in a CI checkout: the commit `.errand/` is read from.
// Each test plays a sandboxed step (or what it left behind) trying to change it.
const REAL = 'env:\n  FROM_SANDBOX_YAML: "yes"\n';
const TAMPERED = 'env:\n  FROM_SANDBOX_YAML: "tampered"\n';
const SHOW = ['--', 'sh', '-c', 'echo "$FROM_SANDBOX_YAML"'];

let home: string;
let env: NodeJS.ProcessEnv;

before(() => {
  ({ home, env } = tempHome());
});
after(() => rmSync(home, { recursive: true, force: true }));

/** A checkout on `branch` whose one commit's sandbox.yaml says "yes"; returns that commit. */
function project(name: string, branch = 'main'): { dir: string; base: string } {
  const dir = join(home, name);
  mkdirSync(dir, { recursive: true });
  git(dir, 'init', '-q', '-b', branch);
  commit(
    dir,
    {
      '.errand/container/Containerfile': `FROM ${BASE_IMAGE}\n`,
      '.errand/sandbox.yaml': REAL,
    },
    'init',
  );
  return { dir, base: git(dir, 'rev-parse', 'HEAD') };
}

/** A commit (on branch `evil`) whose sandbox.yaml says "tampered"; HEAD stays where it was. */
function evilCommit(dir: string): string {
  const head = git(dir, 'rev-parse', '--abbrev-ref', 'HEAD');
  git(dir, 'checkout', '-q', '-b', 'evil');
  commit(dir, { '.errand/sandbox.yaml': TAMPERED }, 'loosen');
  git(dir, 'checkout', '-q', head);
  return git(dir, 'rev-parse', 'evil');
}

const run = (cwd: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}) =>
  cli(['sandbox', 'run', ...args], { env: { ...env, ...extraEnv }, cwd, timeoutMs: 180_000 });

/** Everything of a checkout's git folder a trusted read depends on. */
function gitState(dir: string): string {
  return [
    git(dir, 'for-each-ref', '--format=%(refname) %(objectname) %(symref)'),
    readFileSync(join(dir, '.git', 'config'), 'utf8'),
    String(existsSync(join(dir, '.git', 'info', 'grafts'))),
    String(existsSync(join(dir, '.git', 'refs', 'replace'))),
  ].join('\n');
}

describe('what a sandboxed step can change in the checkout', () => {
  it('a first sandboxed step cannot rewrite .git to change what the next step trusts', async () => {
    const { dir, base } = project('rewrite-git');
    const before = gitState(dir);
    // The step loosens the sandbox file and tries every way to make it the default branch's.
    const step = [
      'r() { label=$1; shift; if ( "$@" ) >/dev/null 2>&1; then echo "$label done"; else echo "$label refused"; fi; }',
      `printf '${TAMPERED.replaceAll('\n', '\\n')}' > .errand/sandbox.yaml`,
      'r commit git -c user.name=x -c user.email=x@e commit -qam loosen',
      'r update-ref git update-ref refs/heads/main HEAD',
      'r set-head git symbolic-ref refs/remotes/origin/HEAD refs/heads/main',
      `r config sh -c 'printf "[core]\\n\\tfsmonitor = touch /workspace/ran\\n" >> .git/config'`,
      `r replace sh -c 'mkdir -p .git/refs/replace && echo x > .git/refs/replace/x'`,
      `r grafts sh -c 'echo x > .git/info/grafts'`,
      'r move mv .git .git-moved',
    ].join('\n');
    const first = await run(dir, ['--', 'sh', '-c', step]);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(first.stdout.trim().split('\n'), [
      'commit refused',
      'update-ref refused',
      'set-head refused',
      'config refused',
      'replace refused',
      'grafts refused',
      'move refused',
    ]);
    assert.equal(gitState(dir), before, 'the host .git is untouched');
    assert.equal(git(dir, 'rev-parse', 'main'), base);

    // The work tree holds the step's sandbox file; the next step still gets the commit's.
    assert.equal(readFileSync(join(dir, '.errand', 'sandbox.yaml'), 'utf8'), TAMPERED);
    const next = await run(dir, SHOW);
    assert.equal(next.code, 0, next.stderr);
    assert.equal(next.stdout, 'yes\n');
  });

  it('a step cannot move the default branch through a link in .git that leads into the working folder', async () => {
    const { dir, base } = project('refs-link');
    const evil = evilCommit(dir);
    // A checkout whose branch folder lies in the work tree, linked from .git (relative, so
    // the link leads to the same folder in the sandbox): the read-only .git does not cover it.
    renameSync(join(dir, '.git', 'refs', 'heads'), join(dir, '.heads'));
    symlinkSync('../../.heads', join(dir, '.git', 'refs', 'heads'));
    assert.equal(git(dir, 'rev-parse', 'main'), base);
    const step = await run(dir, ['--', 'sh', '-c', `echo ${evil} > .heads/main`]);
    assert.equal(git(dir, 'rev-parse', 'main'), base, 'the step did not move main');
    assert.equal(step.code, 125, step.stdout);
    assert.match(step.stderr, /\.git\/refs\/heads is a symbolic link/);
  });

  it("keeps a worktree's .git file read-only", async () => {
    const { dir } = project('main-of-worktree');
    const wt = join(home, 'worktree');
    git(dir, 'worktree', 'add', '-q', '-b', 'pr', wt);
    const gitfile = readFileSync(join(wt, '.git'), 'utf8');
    const r = await run(wt, [
      '--',
      'sh',
      '-c',
      'echo "gitdir: /workspace/planted" > .git && echo done || echo refused',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'refused\n');
    assert.equal(readFileSync(join(wt, '.git'), 'utf8'), gitfile);
    const next = await run(wt, SHOW);
    assert.equal(next.stdout, 'yes\n', next.stderr);
  });

  it('a step run from a subfolder cannot plant a repository there for the next step to trust', async () => {
    const { dir, base } = project('plant-in-subfolder');
    const sub = join(dir, 'packages', 'app');
    mkdirSync(sub, { recursive: true });
    // The neighbour: a subfolder reads the checkout's default branch.
    const clean = await run(sub, SHOW);
    assert.equal(clean.code, 0, clean.stderr);
    assert.equal(clean.stdout, 'yes\n');

    const plant = [
      'mkdir -p .errand/container',
      `printf 'FROM ${BASE_IMAGE}\\n' > .errand/container/Containerfile`,
      `printf '${TAMPERED.replaceAll('\n', '\\n')}' > .errand/sandbox.yaml`,
      'git init -q -b main . && git add -A && git -c user.name=x -c user.email=x@e commit -qm planted',
    ].join(' && ');
    const first = await run(sub, ['--', 'sh', '-c', plant]);
    assert.equal(first.code, 0, first.stderr);
    assert.ok(existsSync(join(sub, '.git')), 'the step made a repository in the subfolder');

    const next = await run(sub, SHOW);
    assert.equal(next.code, 125, next.stdout);
    assert.equal(next.stdout, '');
    assert.match(next.stderr, /inside another folder with a \.git .* pass --trusted-commit SHA/);
    // Pinned, the planted repository cannot answer for the base commit: it does not have it.
    const pinned = await run(sub, ['--trusted-commit', base, ...SHOW]);
    assert.equal(pinned.code, 125);
    assert.equal(pinned.stdout, '');
    assert.match(pinned.stderr, /no such commit/);
  });
});

describe('a repository a step planted', () => {
  // A partial clone fetches an object it lacks from its promisor remote, as the
  // repository's config says: a local remote runs `remote.origin.uploadpack`, an `ext::`
  // one any command. The next step's `--trusted-commit` makes git on the host look the
  // base commit up in the planted repository, which lacks it.
  const remotes: [string, (sub: string, marker: string) => string[]][] = [
    [
      'an upload-pack command',
      (sub, marker) => [
        `git config remote.origin.url ${sub}`,
        `git config remote.origin.uploadpack 'touch ${marker}; false'`,
      ],
    ],
    [
      'an ext:: remote',
      (_sub, marker) => [
        `git config remote.origin.url 'ext::sh -c touch% ${marker}'`,
        'git config protocol.ext.allow always',
      ],
    ],
  ];
  for (const [i, [name, remote]] of remotes.entries()) {
    it(`runs nothing on the host when the next step names the base commit: a partial clone with ${name}`, async () => {
      const { dir, base } = project(`plant-promisor-${i}`);
      const sub = join(dir, 'packages', 'lib');
      mkdirSync(sub, { recursive: true });
      const marker = join(home, `lazy-fetch-ran-${i}`);
      const plant = [
        'git init -q -b main .',
        'git -c user.name=x -c user.email=x@e commit -q --allow-empty -m planted',
        'git config core.repositoryformatversion 1',
        'git config extensions.partialClone origin',
        'git config remote.origin.promisor true',
        ...remote(sub, marker),
      ];
      const step = await run(sub, ['--', 'sh', '-c', plant.join(' && ')]);
      assert.equal(step.code, 0, step.stderr);
      const next = await run(sub, ['--trusted-commit', base, ...SHOW]);
      assert.equal(existsSync(marker), false, "the planted repository's remote ran on the host");
      assert.equal(next.code, 125, next.stdout);
      assert.match(next.stderr, /no such commit/);
    });
  }
});

describe('paths the operator names inside the working folder', () => {
  // The working folder is /workspace, writable: a step can replace any file or folder of
  // it with a link to the host, for the next `errand sandbox run` to follow.
  it('a step cannot turn a --mount folder of the working tree into a link to a host folder', async () => {
    const { dir } = project('mount-link');
    const hostDir = join(home, 'host-only');
    mkdirSync(hostDir, { recursive: true });
    writeFileSync(join(hostDir, 'secret.txt'), 'host-only-content\n');
    mkdirSync(join(dir, 'cache'));
    const mount = ['--mount', 'cache:/cache'];
    // The neighbour: the folder as it is, mounted.
    const clean = await run(dir, [...mount, '--', 'sh', '-c', 'ls /cache; echo ok']);
    assert.equal(clean.code, 0, clean.stderr);
    assert.equal(clean.stdout, 'ok\n');

    const step = await run(dir, ['--', 'sh', '-c', `rm -rf cache && ln -s ${hostDir} cache`]);
    assert.equal(step.code, 0, step.stderr);
    const next = await run(dir, [...mount, '--', 'cat', '/cache/secret.txt']);
    assert.doesNotMatch(next.stdout, /host-only-content/);
    assert.equal(next.code, 125, next.stdout);
    assert.match(next.stderr, /--mount cache:\/cache: .* leads out of the working folder/);
  });

  it('a --mount of a folder holding the checkout does not make its .git writable', async () => {
    const { dir, base } = project('mount-git');
    const before = gitState(dir);
    for (const spec of ['.:/app', '.git:/repo-git', '..:/up']) {
      const r = await run(dir, [
        '--mount',
        spec,
        '--',
        'sh',
        '-c',
        'for g in /app/.git /repo-git /up/mount-git/.git; do [ -d $g ] && git --git-dir=$g update-ref refs/heads/main HEAD~0 2>/dev/null; echo x >> $g/config 2>/dev/null && echo wrote; done; true',
      ]);
      assert.doesNotMatch(r.stdout, /wrote/, spec);
      assert.equal(r.code, 125, `${spec}: ${r.stdout}`);
      assert.match(r.stderr, /holds the checkout's git folder/, spec);
    }
    assert.equal(gitState(dir), before, 'the host .git is untouched');
    assert.equal(git(dir, 'rev-parse', 'main'), base);
    // The neighbour: the same folder mounted read-only.
    const ro = await run(dir, ['--mount', '.:/app:ro', ...SHOW]);
    assert.equal(ro.code, 0, ro.stderr);
    assert.equal(ro.stdout, 'yes\n');
  });

  it('a step cannot point the --network-log file at a host file through a link', async () => {
    const { dir } = project('log-link');
    const victim = join(home, 'victim.sh');
    writeFileSync(victim, 'echo untouched\n');
    const request = ['--', 'sh', '-c', 'curl -s -o /dev/null https://nowhere.example/x; true'];
    // The neighbour: a log in the working folder gets its line.
    const clean = await run(dir, ['--network-log', 'logs/net.log', ...request]);
    assert.equal(clean.code, 0, clean.stderr);
    assert.match(readFileSync(join(dir, 'logs', 'net.log'), 'utf8'), /nowhere\.example/);

    const step = await run(dir, [
      '--',
      'sh',
      '-c',
      `rm -rf logs net.log && ln -s ${victim} net.log && ln -s ${home} logs`,
    ]);
    assert.equal(step.code, 0, step.stderr);
    const file = await run(dir, ['--network-log', 'net.log', ...request]);
    assert.equal(file.code, 125, file.stdout);
    assert.match(file.stderr, /--network-log net\.log: .*symbolic link/);
    const folder = await run(dir, ['--network-log', 'logs/victim.sh', ...request]);
    assert.equal(folder.code, 125, folder.stdout);
    assert.match(
      folder.stderr,
      /--network-log logs\/victim\.sh: .* leads out of the working folder/,
    );
    assert.equal(readFileSync(victim, 'utf8'), 'echo untouched\n', 'the host file is untouched');
  });
});

describe('--trusted-commit', () => {
  let dir: string;
  let base: string;
  before(() => {
    ({ dir, base } = project('pinned'));
    // The default branch moved to a commit the base never had (as a step with write
    // access to .git, or an earlier unsandboxed step, could have done).
    const evil = evilCommit(dir);
    git(dir, 'update-ref', 'refs/heads/main', evil);
  });

  it('reads .errand/ from the named commit, whatever the branches say', async () => {
    const unpinned = await run(dir, SHOW);
    assert.equal(unpinned.stdout, 'tampered\n', 'the branch was moved');
    const pinned = await run(dir, ['--trusted-commit', base, ...SHOW]);
    assert.equal(pinned.code, 0, pinned.stderr);
    assert.equal(pinned.stdout, 'yes\n');
    const upper = await run(dir, ['--trusted-commit', base.toUpperCase(), ...SHOW]);
    assert.equal(upper.stdout, 'yes\n', upper.stderr);
  });

  it('pins errand sandbox image hash to the named commit too', async () => {
    commit(dir, { '.errand/container/Containerfile': `FROM ${BASE_IMAGE}\nRUN true\n` }, 'image');
    const hash = (args: string[]) => cli(['sandbox', 'image', 'hash', ...args], { env, cwd: dir });
    const moved = await hash([]);
    const pinned = await hash(['--trusted-commit', base]);
    git(dir, 'update-ref', 'refs/heads/main', base);
    try {
      const atBase = await hash([]);
      assert.equal(pinned.code, 0, pinned.stderr);
      assert.equal(pinned.stdout, atBase.stdout);
      assert.notEqual(moved.stdout, atBase.stdout);
    } finally {
      git(dir, 'reset', '-q', '--hard', 'evil');
    }
  });

  it('refuses anything but a full commit id that the checkout has', async () => {
    git(dir, 'tag', '-a', '-m', 'a tag', 'v1', base);
    const cases: [string, RegExp][] = [
      [base.slice(0, 12), /expected a full commit id/],
      ['main', /expected a full commit id/],
      ['HEAD', /expected a full commit id/],
      [`${base}^{tree}`, /expected a full commit id/],
      [git(dir, 'rev-parse', `${base}^{tree}`), /no such commit/],
      [git(dir, 'rev-parse', 'v1'), /no such commit/],
      ['0'.repeat(40), /no such commit/],
    ];
    for (const [id, message] of cases) {
      const r = await run(dir, ['--trusted-commit', id, '--', 'touch', 'ran']);
      assert.equal(r.code, 125, `${id}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /--trusted-commit/);
      assert.match(r.stderr, message, id);
    }
    assert.equal(existsSync(join(dir, 'ran')), false, 'no command ran');
  });
});

describe('git reading the trusted files', () => {
  it('ignores replacement objects and grafts when reading trusted files', async () => {
    const { dir, base } = project('replaced');
    const evil = evilCommit(dir);
    const blob = git(dir, 'rev-parse', `${base}:.errand/sandbox.yaml`);
    const evilBlob = git(dir, 'rev-parse', `${evil}:.errand/sandbox.yaml`);
    git(dir, 'replace', base, evil);
    git(dir, 'replace', '-f', blob, evilBlob);
    // The checkout's own config asks for replacements, which outranks GIT_NO_REPLACE_OBJECTS.
    git(dir, 'config', 'core.useReplaceRefs', 'true');
    writeFileSync(join(dir, '.git', 'info', 'grafts'), `${base} ${evil}\n`);
    assert.equal(
      git(dir, 'show', 'main:.errand/sandbox.yaml'),
      TAMPERED.trim(),
      'git honours them',
    );

    const r = await run(dir, SHOW);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'yes\n');
  });

  it('runs no program the working folder holds, even with . and an empty entry in PATH', async () => {
    const { dir } = project('path-dot');
    const marker = join(home, 'path-ran');
    // What a step could leave in /workspace for the next `errand sandbox run` on the host.
    for (const tool of ['git', 'podman', 'unshare', 'sh', 'ip', 'conmon', 'crun', 'runc'])
      writeFileSync(join(dir, tool), `#!/bin/sh\necho "$0" >> ${marker}\nexit 1\n`, {
        mode: 0o755,
      });
    const r = await run(dir, SHOW, { PATH: `.::${env.PATH}:` });
    assert.equal(existsSync(marker) ? readFileSync(marker, 'utf8') : '', '', 'nothing ran');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'yes\n');
  });

  it("runs nothing the checkout's config names (fsmonitor, hooks)", async () => {
    const { dir } = project('configured');
    const marker = join(home, 'config-ran');
    const hooks = join(home, 'hooks');
    mkdirSync(hooks, { recursive: true });
    for (const hook of ['post-checkout', 'reference-transaction', 'post-index-change'])
      writeFileSync(join(hooks, hook), `#!/bin/sh\ntouch ${marker}\n`, { mode: 0o755 });
    git(dir, 'config', 'core.fsmonitor', `touch ${marker}; false`);
    git(dir, 'config', 'core.hooksPath', hooks);
    const r = await run(dir, SHOW);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'yes\n');
    assert.equal(existsSync(marker), false, 'nothing from the config ran');
  });
});

describe('where there is no default branch', () => {
  it('refuses to run in a checkout with no default branch, saying what to set', async () => {
    const { dir, base } = project('no-default', 'feature');
    const r = await run(dir, ['--', 'touch', 'ran']);
    assert.equal(r.code, 125);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /no default branch to read \.errand\/ from/);
    assert.match(r.stderr, /--trusted-commit SHA/);
    assert.match(r.stderr, /git remote set-head origin BRANCH/);
    assert.equal(existsSync(join(dir, 'ran')), false, 'the command did not run');
    // The neighbour: the same checkout with the commit named.
    const pinned = await run(dir, ['--trusted-commit', base, ...SHOW]);
    assert.equal(pinned.code, 0, pinned.stderr);
    assert.equal(pinned.stdout, 'yes\n');
  });

  it('outside any git checkout reads .errand/ from the working folder and says so', async () => {
    const dir = join(home, 'plain');
    mkdirSync(join(dir, '.errand', 'container'), { recursive: true });
    writeFileSync(join(dir, '.errand', 'container', 'Containerfile'), `FROM ${BASE_IMAGE}\n`);
    writeFileSync(join(dir, '.errand', 'sandbox.yaml'), REAL);
    const r = await run(dir, SHOW);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'yes\n');
    assert.match(r.stderr, /is not in a git checkout: \.errand\/ is read from the working folder/);
  });
});

describe('!env in .errand/sandbox.yaml', () => {
  const SECRET = 'ci-secret-value-0123456789';
  const cases: [name: string, file: string, key: string][] = [
    ['a plain variable', 'env:\n  LEAK: !env CI_SECRET\n', 'env.LEAK'],
    [
      'an alias of a masked secret',
      'masked_secrets:\n  TOKEN:\n    value: &s !env CI_SECRET\n    hosts: [api.example]\nenv:\n  LEAK: *s\n',
      'env.LEAK',
    ],
    [
      'a host list',
      'masked_secrets:\n  TOKEN:\n    value: x\n    hosts: [!env CI_SECRET]\n',
      'masked_secrets.TOKEN.hosts.0',
    ],
  ];
  for (const [i, [name, file, key]] of cases.entries()) {
    it(`refuses !env in ${name}, so a CI secret never reaches the container as it is`, async () => {
      const { dir } = project(`env-${i}`);
      commit(dir, { '.errand/sandbox.yaml': file }, 'env');
      const r = await run(dir, ['--', 'sh', '-c', 'env; touch ran'], { CI_SECRET: SECRET });
      assert.equal(r.code, 125, r.stdout);
      assert.equal(
        r.stderr.trim(),
        `errand: .errand/sandbox.yaml (main at ${git(dir, 'rev-parse', 'HEAD').slice(0, 12)}): ${key}: !env is only allowed in masked_secrets and aws_credentials values`,
      );
      assert.equal(existsSync(join(dir, 'ran')), false, 'the command did not run');
      assert.doesNotMatch(r.stdout + r.stderr, new RegExp(SECRET));
    });
  }
});

describe('a hostile default branch', () => {
  const cases: [name: string, files: Record<string, string>, says: RegExp][] = [
    [
      'an alias bomb in .errand/sandbox.yaml',
      { '.errand/sandbox.yaml': ALIAS_BOMB },
      /^errand: \.errand\/sandbox\.yaml \(main at \w{12}\): its aliases \(\*name\) expand past errand's limit of 100 alias uses/,
    ],
    [
      'an alias bomb in .errand/network-allowlist.yaml',
      { '.errand/network-allowlist.yaml': ALIAS_BOMB },
      /^errand: \.errand\/network-allowlist\.yaml \(main at \w{12}\): its aliases \(\*name\) expand past errand's limit of 100 alias uses/,
    ],
    [
      'deep nesting in .errand/sandbox.yaml',
      { '.errand/sandbox.yaml': DEEP_NESTING },
      /^errand: \.errand\/sandbox\.yaml \(main at \w{12}\): its collections are nested more than 64 levels deep/,
    ],
    [
      'a .errand/sandbox.yaml over 1 MiB',
      { '.errand/sandbox.yaml': OVERSIZED_SANDBOX_FILE },
      /^errand: \.errand\/sandbox\.yaml is 1200029 bytes, more than the 1 MiB \(1048576 bytes\) errand reads/,
    ],
  ];
  for (const [i, [name, files, says]] of cases.entries()) {
    it(`exits 125 on ${name}, naming the file and the limit`, async () => {
      const { dir } = project(`hostile-${i}`);
      commit(dir, files, 'hostile');
      const r = await run(dir, ['--', 'touch', 'ran']);
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, says);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(existsSync(join(dir, 'ran')), false, 'the command did not run');
    });
  }

  it('exits 125 on a .errand/container/ with more files than the limit, naming the folder and the limit', async () => {
    const { dir } = project('hostile-crowded');
    const blob = git(dir, 'rev-parse', 'HEAD:.errand/container/Containerfile');
    const names = Array.from({ length: 1000 }, (_, n) => `.errand/container/f${n}`);
    commitBlobNames(dir, blob, names, 'crowd the build context');
    git(dir, 'reset', '-q', '--hard');
    const r = await run(dir, ['--', 'touch', 'ran']);
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr, /^errand: \.errand\/container has more than 1000 entries/);
    assert.equal(existsSync(join(dir, 'ran')), false, 'the command did not run');
  });

  it('outside any git checkout exits 125 on a .errand/sandbox.yaml over 1 MiB, unread', async () => {
    const dir = join(home, 'plain-big');
    mkdirSync(join(dir, '.errand', 'container'), { recursive: true });
    writeFileSync(join(dir, '.errand', 'container', 'Containerfile'), `FROM ${BASE_IMAGE}\n`);
    writeFileSync(join(dir, '.errand', 'sandbox.yaml'), OVERSIZED_SANDBOX_FILE);
    const r = await run(dir, ['--', 'touch', 'ran']);
    assert.equal(r.code, 125, r.stderr);
    assert.match(r.stderr, /errand: \.errand\/sandbox\.yaml is 1200029 bytes, more than the 1 MiB/);
    assert.equal(existsSync(join(dir, 'ran')), false, 'the command did not run');
  });
});
