import assert from 'node:assert/strict';
import { test } from 'node:test';
import { splitMessage, toMrkdwn } from '../../../src/channels/slack/mrkdwn.ts';

/** Markdown as agents write it, and what Slack must receive to show it right. */
const cases: Array<[string, string, string]> = [
  ['bold, italics and strikethrough', '**bold** *it* _it2_ ~~gone~~', '*bold* _it_ _it2_ ~gone~'],
  ['headings become bold lines', '# Title\n\n## Sub', '*Title*\n\n*Sub*'],
  [
    'links become Slack links',
    '[the PR](https://forge.example/pr/1)',
    '<https://forge.example/pr/1|the PR>',
  ],
  ['bare URLs become links', 'see https://example.com/x', 'see <https://example.com/x>'],
  ['a javascript: link stays text', '[x](javascript:alert(1))', '[x](javascript:alert(1))'],
  ['bullets and nesting', '- one\n- two\n  - deep', '• one\n• two\n    • deep'],
  ['numbered lists keep their numbers', '1. first\n2. second', '1. first\n2. second'],
  [
    'code blocks keep their content, escaped',
    '```ts\nif (a < b && c) {}\n```',
    '```\nif (a &lt; b &amp;&amp; c) {}\n```',
  ],
  ['inline code', 'run `npm test`', 'run `npm test`'],
  ['quotes', '> careful\n> here', '> careful\n> here'],
  [
    'tables become aligned code blocks',
    '| a | bb |\n|---|---|\n| 1 | 2 |',
    '```\na | bb\n--|---\n1 | 2\n```',
  ],
  [
    'broadcasts and mentions cannot be formed',
    '<!channel> <!here> <@U123>',
    '&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt;',
  ],
  ['raw HTML is text', '<b>not bold</b>', '&lt;b&gt;not bold&lt;/b&gt;'],
  [
    'a pipe in link text does not break the link',
    '[a|b](https://x.example)',
    '<https://x.example|a¦b>',
  ],
];

for (const [name, input, expected] of cases) {
  test(`mrkdwn: ${name}`, () => {
    assert.equal(toMrkdwn(input), expected);
  });
}

test('long text splits at line ends into parts Slack accepts, closing and reopening code blocks', () => {
  const text = `intro\n\`\`\`\n${'x'.repeat(80)}\n${'line of code\n'.repeat(600)}\`\`\`\nend`;
  const parts = splitMessage(text, 1000);
  assert.ok(parts.length > 5);
  for (const p of parts) {
    assert.ok(p.length <= 1000, `part of ${p.length}`);
    assert.equal((p.match(/```/g) ?? []).length % 2, 0, 'code fences balanced in each part');
  }
  assert.match(parts.at(-1)!, /end$/);
});
