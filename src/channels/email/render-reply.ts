/**
 * The agent answers in Markdown; mail clients want text and HTML. The text part is the
 * Markdown itself (it reads well as plain text); the HTML part is rendered with raw HTML
 * escaped, because the agent's text may repeat what a web page or a file told it to say.
 */
import MarkdownIt from 'markdown-it';

const md = new MarkdownIt({ html: false, linkify: true, typographer: false });
// Only web and mail links become anchors; markdown-it already refuses javascript: and
// data:, this narrows it to what a reply needs.
md.validateLink = (url: string) => /^(https?:|mailto:)/i.test(url.trim());

const STYLE = {
  body: 'font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;line-height:1.5;color:#1f2328;max-width:760px',
  pre: 'background:#f6f8fa;padding:10px;border-radius:6px;overflow-x:auto;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px',
  code: 'background:#f6f8fa;padding:1px 4px;border-radius:4px;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px',
  table: 'border-collapse:collapse',
  cell: 'border:1px solid #d0d7de;padding:4px 8px',
  footer: 'color:#6e7781;font-size:12px;margin-top:24px',
};

md.renderer.rules.code_inline = (tokens, i) =>
  `<code style="${STYLE.code}">${md.utils.escapeHtml(tokens[i]!.content)}</code>`;
md.renderer.rules.fence = (tokens, i) =>
  `<pre style="${STYLE.pre}"><code>${md.utils.escapeHtml(tokens[i]!.content)}</code></pre>\n`;
md.renderer.rules.code_block = md.renderer.rules.fence;
// An image would be fetched by the reader's mail client when the reply is opened, from an
// address the agent chose: a way out of the sandbox to any host, and a read receipt. It is
// a link instead, followed only if the person clicks it.
md.renderer.rules.image = (tokens, i, options, env, self) => {
  const t = tokens[i]!;
  const src = md.utils.escapeHtml(String(t.attrGet('src') ?? ''));
  const alt = self.renderInlineAsText(t.children ?? [], options, env);
  return `<a href="${src}">${alt ? md.utils.escapeHtml(alt) : src}</a>`;
};
for (const tag of ['table', 'th', 'td'] as const) {
  md.renderer.rules[`${tag}_open`] = (tokens, i, options, _env, self) => {
    tokens[i]!.attrJoin('style', tag === 'table' ? STYLE.table : STYLE.cell);
    return self.renderToken(tokens, i, options);
  };
}

/** Text and HTML bodies of a reply; `footer` is a muted last line (usage). */
export function renderReply(
  markdown: string,
  opts: { footer?: string } = {},
): { text: string; html: string } {
  const source = markdown.replace(/\r\n?/g, '\n').trim();
  const text = opts.footer ? `${source}\n\n-- \n${opts.footer}\n` : `${source}\n`;
  const footer = opts.footer
    ? `<p style="${STYLE.footer}">${md.utils.escapeHtml(opts.footer)}</p>`
    : '';
  const html = `<!doctype html><html><head><meta charset="utf-8"></head><body style="${STYLE.body}">${md.render(source)}${footer}</body></html>\n`;
  return { text, html };
}
