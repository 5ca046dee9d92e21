import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSandboxFile } from '../../src/sandbox/index.ts';

// `.errand/sandbox.yaml` names CI secrets with `!env NAME`. Only credential values may:
// the proxy swaps those in on their scoped hosts; anywhere else the real value would
// reach the container as it is.
const SECRET = 'real-secret-value-42';
const env = { CI_SECRET: SECRET, KEY_ID: 'AKIAREAL', KEY: 'real-key', TOKEN: 'real-token' };

const problem = (text: string, e: NodeJS.ProcessEnv | 'unresolved' = env) => {
  const r = parseSandboxFile(text, { env: e });
  assert.equal(r.ok, false, 'refused');
  return (r as { problem: string }).problem;
};

describe('!env in the sandbox file', () => {
  it('resolves !env in each credential value from the environment', () => {
    const r = parseSandboxFile(
      [
        'masked_secrets:',
        '  GH_TOKEN: { value: !env CI_SECRET, hosts: [api.example] }',
        'aws_credentials:',
        '  AWS: { access_key_id: !env KEY_ID, secret_access_key: !env KEY, session_token: !env TOKEN, hosts: ["*.amazonaws.com"] }',
      ].join('\n'),
      { env },
    );
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.file.masked_secrets.GH_TOKEN!.value, SECRET);
    assert.deepEqual(
      [
        r.file.aws_credentials.AWS!.access_key_id,
        r.file.aws_credentials.AWS!.secret_access_key,
        r.file.aws_credentials.AWS!.session_token,
      ],
      ['AKIAREAL', 'real-key', 'real-token'],
    );
  });

  const misplaced: [string, string, string][] = [
    ['a plain variable', 'env:\n  LEAK: !env CI_SECRET\n', 'env.LEAK'],
    ['a limit', 'limits:\n  memory: !env CI_SECRET\n', 'limits.memory'],
    [
      'a masked secret host',
      'masked_secrets:\n  X: { value: v, hosts: [!env CI_SECRET] }\n',
      'masked_secrets.X.hosts.0',
    ],
    [
      'a masked secret header',
      'masked_secrets:\n  X: { value: v, hosts: [a], headers: [!env CI_SECRET] }\n',
      'masked_secrets.X.headers.0',
    ],
    [
      'an AWS host',
      'aws_credentials:\n  A: { access_key_id: a, secret_access_key: b, hosts: [!env CI_SECRET] }\n',
      'aws_credentials.A.hosts.0',
    ],
    [
      'an alias of a credential value',
      'masked_secrets:\n  X: { value: &s !env CI_SECRET, hosts: [a] }\nenv:\n  LEAK: *s\n',
      'env.LEAK',
    ],
    [
      'a key named like a credential field at another depth',
      'env:\n  value: !env CI_SECRET\n',
      'env.value',
    ],
    ['the whole file', '!env CI_SECRET\n', '(top level)'],
  ];
  for (const [where, text, key] of misplaced) {
    it(`refuses !env in ${where}, naming the key path`, () => {
      for (const mode of [env, 'unresolved'] as const) {
        const p = problem(text, mode);
        assert.equal(
          p,
          `${key}: !env is only allowed in masked_secrets and aws_credentials values`,
        );
      }
    });
  }

  it('refuses an unset variable, naming it and the key', () => {
    assert.equal(
      problem('masked_secrets:\n  X: { value: !env NOT_SET_HERE, hosts: [a] }\n'),
      'masked_secrets.X.value: !env NOT_SET_HERE is not set in this environment',
    );
  });

  it('refuses any tag but !env', () => {
    assert.match(
      problem('masked_secrets:\n  X: { value: !secret CI_SECRET, hosts: [a] }\n'),
      /Unresolved tag: !secret.*the only tag allowed is !env/,
    );
  });

  it('never puts a value in a problem', () => {
    const p = problem('masked_secrets:\n  X: { value: !env CI_SECRET, hosts: [] }\n');
    assert.match(p, /^masked_secrets\.X\.hosts: /);
    assert.doesNotMatch(p, new RegExp(SECRET));
  });

  it('leaves !env unresolved for the gateway, so a file declaring CI credentials still parses', () => {
    const r = parseSandboxFile(
      'limits:\n  memory: 1g\nmasked_secrets:\n  X: { value: !env CI_SECRET, hosts: [a] }\n',
      { env: 'unresolved' },
    );
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.file.limits.memory, '1g');
    assert.equal(r.file.masked_secrets.X!.value, '!env CI_SECRET');
  });

  it('names an unknown key and an invalid value by their key path', () => {
    assert.match(problem('limits:\n  memroy: 1g\n'), /^limits\.memroy: /);
    assert.match(problem('limits:\n  memory: lots\n'), /^limits\.memory: a size like 512m/);
    assert.match(problem('env: [\n'), /^not valid YAML: /);
  });
});
