/**
 * Text of an HTML-only message. The quoted earlier message is cut off first, at the
 * marker each common client puts before it, since in HTML the quote is markup rather than
 * "> " lines. A forward is content and is kept.
 */
import { convert } from 'html-to-text';

const QUOTE_MARKERS = [
  /<div[^>]*class="[^"]*gmail_quote/i, // Gmail
  /<div[^>]*id="(appendonsend|divRplyFwdMsg)"/i, // Outlook
  /<hr[^>]*id="stopSpelling"/i, // older Outlook
  /<div[^>]*class="[^"]*moz-cite-prefix/i, // Thunderbird's "On … wrote:"
  /<blockquote[^>]*type="cite"/i, // Apple Mail, Thunderbird
  /<div[^>]*class="[^"]*yahoo_quoted/i, // Yahoo
];

const FORWARD = /(-{5,}\s*Forwarded message|Begin forwarded message)/i;

/** Plain text of an HTML body, without the quoted earlier message. */
export function htmlToText(html: string): string {
  return convert(cutQuote(html), {
    wordwrap: false,
    selectors: [
      { selector: 'img', format: 'skip' },
      { selector: 'script', format: 'skip' },
      { selector: 'style', format: 'skip' },
      { selector: 'head', format: 'skip' },
      { selector: 'a', options: { hideLinkHrefIfSameAsText: true, linkBrackets: ['(', ')'] } },
      { selector: 'table', format: 'dataTable', options: { uppercaseHeaderCells: false } },
      { selector: 'h1', options: { uppercase: false } },
      { selector: 'h2', options: { uppercase: false } },
      { selector: 'h3', options: { uppercase: false } },
    ],
  }).trim();
}

function cutQuote(html: string): string {
  let cut = html.length;
  for (const marker of QUOTE_MARKERS) {
    const m = marker.exec(html);
    if (m && m.index < cut) cut = m.index;
  }
  if (cut === html.length) return html;
  // htmlparser2 closes whatever the cut leaves open.
  const quoted = html.slice(cut, cut + 2000).replace(/<[^>]*>/g, ' ');
  return FORWARD.test(quoted) ? html : html.slice(0, cut);
}
