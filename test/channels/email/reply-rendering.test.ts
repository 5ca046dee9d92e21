import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderReply } from '../../../src/channels/email/render-reply.ts';

test('a reply renders Markdown to HTML and keeps the Markdown as its text part', () => {
  const { text, html } = renderReply(
    '# Done\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```ts\nconst x = 1 < 2;\n```\n\nSee https://example.com/pr/1',
  );
  assert.match(text, /^# Done\n/);
  assert.match(html, /<h1>Done<\/h1>/);
  assert.match(html, /<li>one<\/li>/);
  assert.match(html, /<table style="[^"]+">/);
  assert.match(html, /<td style="[^"]+">1<\/td>/);
  assert.match(html, /<pre style="[^"]+"><code>const x = 1 &lt; 2;/);
  assert.match(html, /<a href="https:\/\/example\.com\/pr\/1">/);
});

test('raw HTML the agent wrote is escaped, never rendered', () => {
  const { html } = renderReply('<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>');
  assert.doesNotMatch(html, /<script>|<img/);
  assert.match(html, /&lt;script&gt;/);
});

test('only web and mail links become anchors', () => {
  const { html } = renderReply('[a](javascript:alert(1)) [b](data:text/html,x) [c](mailto:a@b.c)');
  assert.doesNotMatch(html, /href="(javascript|data):/);
  assert.match(html, /href="mailto:a@b\.c"/);
});

test('the usage footer goes under the reply in both parts', () => {
  const { text, html } = renderReply('Done.', { footer: '$0.01 · 3 turns <x>' });
  assert.match(text, /Done\.\n\n-- \n\$0\.01 · 3 turns <x>\n$/);
  assert.match(html, /\$0\.01 · 3 turns &lt;x&gt;<\/p>/);
});
