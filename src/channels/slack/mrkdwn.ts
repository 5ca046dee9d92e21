/**
 * The agent answers in Markdown; Slack shows its own "mrkdwn". This renders one into the
 * other from markdown-it's token stream, so nesting and edge cases follow a real parser:
 * bold is *x*, links are <url|text>, lists get bullets, tables (which Slack cannot show)
 * become aligned code blocks. &, < and > are escaped, so text can never form a mention
 * or a broadcast like <!channel>.
 */
import MarkdownIt from 'markdown-it';

type Token = ReturnType<InstanceType<typeof MarkdownIt>['parse']>[number];

const md = new MarkdownIt({ html: false, linkify: true });

export function escapeMrkdwn(s: string): string {
  return s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

export function toMrkdwn(markdown: string): string {
  const tokens = md.parse(markdown.replace(/\r\n?/g, '\n'), {});
  const out: string[] = [];
  const lists: Array<{ ordered: boolean; n: number }> = [];
  let quote = 0;
  let i = 0;
  const block = (text: string) => {
    const prefix = '> '.repeat(quote);
    out.push(
      text
        .split('\n')
        .map((l) => prefix + l)
        .join('\n'),
    );
  };
  while (i < tokens.length) {
    const t = tokens[i]!;
    switch (t.type) {
      case 'heading_open': {
        const inline = tokens[i + 1]!;
        block(`*${inlineText(inline.children ?? [], true)}*`);
        i += 3;
        continue;
      }
      case 'paragraph_open': {
        const inline = tokens[i + 1]!;
        const text = inlineText(inline.children ?? []);
        if (lists.length > 0) {
          const list = lists[lists.length - 1]!;
          const indent = '    '.repeat(lists.length - 1);
          const bullet = list.ordered ? `${list.n}.` : '•';
          // Only the first paragraph of an item carries its bullet.
          if (out.at(-1) === '\u0000item') {
            out.pop();
            block(`${indent}${bullet} ${text}`);
          } else block(`${indent}   ${text}`);
        } else block(text);
        i += 3;
        continue;
      }
      case 'bullet_list_open':
      case 'ordered_list_open':
        lists.push({
          ordered: t.type === 'ordered_list_open',
          n: Number(t.attrGet('start') ?? 1) - 1,
        });
        break;
      case 'bullet_list_close':
      case 'ordered_list_close':
        lists.pop();
        break;
      case 'list_item_open':
        lists[lists.length - 1]!.n++;
        out.push('\u0000item');
        break;
      case 'list_item_close':
        if (out.at(-1) === '\u0000item') out.pop();
        break;
      case 'blockquote_open':
        quote++;
        break;
      case 'blockquote_close':
        quote--;
        break;
      case 'fence':
      case 'code_block':
        block(`\`\`\`\n${escapeMrkdwn(t.content.replace(/\n$/, ''))}\n\`\`\``);
        break;
      case 'hr':
        block('──────────');
        break;
      case 'table_open': {
        const end = tokens.findIndex((x, j) => j > i && x.type === 'table_close');
        block(table(tokens.slice(i, end)));
        i = end + 1;
        continue;
      }
      default:
        break;
    }
    i++;
  }
  return joinBlocks(out.filter((b) => b !== '\u0000item'));
}

/** List items sit on consecutive lines; other blocks are separated by a blank line. */
function joinBlocks(blocks: string[]): string {
  let s = '';
  for (const [k, b] of blocks.entries()) {
    const item = /^\s*(•|\d+\.)\s/.test(b) || /^ {3}/.test(b);
    const prevItem =
      k > 0 && (/^\s*(•|\d+\.)\s/.test(blocks[k - 1]!) || /^ {3}/.test(blocks[k - 1]!));
    s += k === 0 ? b : item && prevItem ? `\n${b}` : `\n\n${b}`;
  }
  return s.trim();
}

function inlineText(children: Token[], inHeading = false): string {
  let s = '';
  let link: string | undefined;
  let linkText = '';
  for (const c of children) {
    const piece = (() => {
      switch (c.type) {
        case 'text':
          return escapeMrkdwn(c.content);
        case 'code_inline':
          return `\`${escapeMrkdwn(c.content.replaceAll('`', "'"))}\``;
        case 'strong_open':
        case 'strong_close':
          return inHeading ? '' : '*';
        case 'em_open':
        case 'em_close':
          return '_';
        case 's_open':
        case 's_close':
          return '~';
        case 'softbreak':
        case 'hardbreak':
          return '\n';
        case 'image':
          return `<${safeUrl(String(c.attrGet('src') ?? ''))}|${escapeMrkdwn(c.content || 'image')}>`;
        default:
          return '';
      }
    })();
    if (c.type === 'link_open') {
      link = String(c.attrGet('href') ?? '');
      linkText = '';
      continue;
    }
    if (c.type === 'link_close') {
      const url = safeUrl(link ?? '');
      const text = linkText.trim();
      s += url
        ? text && text !== escapeMrkdwn(link ?? '')
          ? `<${url}|${text.replaceAll('|', '¦')}>`
          : `<${url}>`
        : text;
      link = undefined;
      continue;
    }
    if (link !== undefined) linkText += piece;
    else s += piece;
  }
  return s;
}

/** Only web and mail links; `<` `>` `|` would break Slack's link syntax. */
function safeUrl(url: string): string {
  return /^(https?:|mailto:)/i.test(url) ? url.replace(/[<>|\s]/g, encodeURIComponent) : '';
}

function table(tokens: Token[]): string {
  const rows: string[][] = [];
  let row: string[] | undefined;
  for (const t of tokens) {
    if (t.type === 'tr_open') row = [];
    else if (t.type === 'tr_close' && row) rows.push(row);
    else if (t.type === 'inline' && row)
      row.push((t.children ?? []).map((c) => c.content).join(''));
  }
  const widths =
    rows[0]?.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length))) ?? [];
  const line = (r: string[]) =>
    r
      .map((cell, col) => cell.padEnd(widths[col] ?? 0))
      .join(' | ')
      .trimEnd();
  const lines = rows.map(line);
  if (lines.length > 1) lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('-|-'));
  return `\`\`\`\n${escapeMrkdwn(lines.join('\n'))}\n\`\`\``;
}

/**
 * Splits text into messages Slack accepts (`max` characters each), at blank lines where
 * possible and never inside a code block without closing and reopening it.
 */
export function splitMessage(text: string, max = 3500): string[] {
  if (text.length <= max) return [text];
  const parts: string[] = [];
  let current = '';
  let inCode = false;
  for (const line of text.split('\n')) {
    const fence = line.startsWith('```');
    const next = current ? `${current}\n${line}` : line;
    if (next.length > max - 4 && current) {
      parts.push(inCode ? `${current}\n\`\`\`` : current);
      current = inCode ? `\`\`\`\n${line}` : line;
    } else current = next;
    while (current.length > max) {
      parts.push(current.slice(0, max));
      current = current.slice(max);
    }
    if (fence) inCode = !inCode;
  }
  if (current) parts.push(current);
  return parts;
}
