import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  redactUrl,
  redactValues,
  stripCredentials,
  urlCredentials,
} from '../../src/util/url-credentials.ts';

describe('redactUrl', () => {
  const rows: [string, string][] = [
    ['https://user:tok@host/x.git', 'https://***@host/x.git'],
    ['https://tok@host/x.git', 'https://***@host/x.git'],
    ['https://u:p@ss@host/x.git', 'https://***@host/x.git'],
    ["fatal: unable to access 'http://a:b@h:9/x/'", "fatal: unable to access 'http://***@h:9/x/'"],
    ['imaps://errand%40example.com:pw@mail.example.com', 'imaps://***@mail.example.com'],
    ['smtp://u:pw@127.0.0.1:587', 'smtp://***@127.0.0.1:587'],
    ['https://host/x?access_token=abc123&page=2', 'https://host/x?access_token=***&page=2'],
    [
      'wss://wss.example.com/link/?ticket=t-123&app_id=A1',
      'wss://wss.example.com/link/?ticket=***&app_id=A1',
    ],
    [
      'https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F1&X-Amz-Signature=f00d',
      'https://b.s3.amazonaws.com/k?X-Amz-Credential=***&X-Amz-Signature=***',
    ],
    ['https://h/?key=AIzaSy0&q=cats', 'https://h/?key=***&q=cats'],
    ['<a href="https://h/?a=1&amp;token=zz">', '<a href="https://h/?a=1&amp;token=***">'],
    // JSON text: a match never runs past the end of a string into the next value.
    [
      '{"a":"https://host/x","b":"bob@example.com"}',
      '{"a":"https://host/x","b":"bob@example.com"}',
    ],
    ['{"u":"https://t@h/","v":"x"}', '{"u":"https://***@h/","v":"x"}'],
    ['https://host/x.git', 'https://host/x.git'],
    ['https://host/search?q=token&monkey=1', 'https://host/search?q=token&monkey=1'],
    ['git@github.com:org/x.git', 'git@github.com:org/x.git'],
    ['/srv/git/x.git', '/srv/git/x.git'],
    ['mail alice@example.com', 'mail alice@example.com'],
  ];
  for (const [input, output] of rows) {
    it(`turns ${input} into ${output}`, () => {
      assert.equal(redactUrl(input), output);
    });
  }
});

describe('stripCredentials', () => {
  it('drops the userinfo, so the URL still names the repository', () => {
    assert.equal(
      stripCredentials('https://x-access-token:ghs_1@github.com/a/b.git'),
      'https://github.com/a/b.git',
    );
  });
  it('hides a token in the query', () => {
    assert.equal(
      stripCredentials('https://git.example.com/a.git?private_token=glpat-1'),
      'https://git.example.com/a.git?private_token=***',
    );
  });
});

describe('urlCredentials', () => {
  it('names the userinfo, and its token as written and decoded, longest first', () => {
    assert.deepEqual(urlCredentials('https://x-access-token:ghs_a%2Fb@h/x.git'), [
      'x-access-token:ghs_a%2Fb',
      'x-access-token:ghs_a/b',
      'x-access-token',
      'ghs_a%2Fb',
      'ghs_a/b',
    ]);
  });
  it('keeps a short user name, which is no secret and would hide every word it is in', () => {
    assert.deepEqual(urlCredentials('https://git:hunter22@h/x.git'), ['git:hunter22', 'hunter22']);
  });
  it('is empty for a URL without userinfo and for a local path', () => {
    assert.deepEqual(urlCredentials('https://h/x.git'), []);
    assert.deepEqual(urlCredentials('/srv/x.git'), []);
  });
  it('hides them where a message quotes them without the URL', () => {
    const url = 'git://x-access-token:ghs_Z9@127.0.0.1:1/a.git';
    assert.equal(
      redactValues('unable to look up x-access-token:ghs_Z9@127.0.0.1:1', urlCredentials(url)),
      'unable to look up ***@127.0.0.1:1',
    );
  });
});
