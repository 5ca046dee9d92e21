import assert from 'node:assert/strict';
import { test } from 'node:test';
import { htmlToText } from '../../../src/channels/email/html-text.ts';
import { stripQuoted } from '../../../src/channels/email/quoted-text.ts';

/** Replies as common clients write them: what the person wrote, then what they quoted. */
const plain: Array<[string, string, string]> = [
  [
    'Gmail',
    'Yes, go ahead.\r\n\r\nOn Mon, 3 Nov 2025 at 10:00, errand <errand@example.com> wrote:\r\n> Shall I merge?\r\n> \r\n',
    'Yes, go ahead.',
  ],
  [
    'Gmail with the attribution wrapped over two lines',
    'Yes, go ahead.\n\nOn Mon, 3 Nov 2025 at 10:00, errand via Example <errand@example.com>\nwrote:\n\n> Shall I merge?\n',
    'Yes, go ahead.',
  ],
  [
    'Outlook',
    'Please also check the tests.\n\n-----Original Message-----\nFrom: errand <errand@example.com>\nSent: Monday, November 3, 2025 10:00 AM\nTo: Alice\nSubject: Re: Fix\n\nDone.\n',
    'Please also check the tests.',
  ],
  [
    'Outlook on the web',
    'Looks good.\n\n________________________________\nFrom: errand <errand@example.com>\nSent: Monday, November 3, 2025 10:00\nTo: Alice <alice@example.com>\nSubject: Re: Fix\n\nDone.\n',
    'Looks good.',
  ],
  [
    'Apple Mail',
    'Ship it.\n\nSent from my iPhone\n\n> On 3 Nov 2025, at 10:00, errand <errand@example.com> wrote:\n> \n> Done.\n',
    'Ship it.',
  ],
  [
    'Apple Mail, attribution outside the quote',
    'Ship it.\n\nOn 3 Nov 2025, at 10:00, errand <errand@example.com> wrote:\n\n> Done.\n',
    'Ship it.',
  ],
  ['Thunderbird', 'Thanks.\n\nOn 11/3/25 10:00 AM, errand wrote:\n> Done.\n', 'Thanks.'],
  [
    'German client',
    'Danke!\n\nAm 03.11.2025 um 10:00 schrieb errand <errand@example.com>:\n> Fertig.\n',
    'Danke!',
  ],
  [
    'French client',
    'Merci.\n\nLe lun. 3 nov. 2025 à 10:00, errand <errand@example.com> a écrit :\n> Fini.\n',
    'Merci.',
  ],
  [
    'a signature after "-- "',
    'Please rerun.\n\n-- \nAlice Example\nStaff Engineer\n',
    'Please rerun.',
  ],
  [
    'answers written between quoted lines',
    '> Should I use Postgres?\nNo, keep SQLite.\n> And the cache?\nDrop it.\n',
    'No, keep SQLite.\nDrop it.',
  ],
  [
    '"wrote:" in the text itself, with no quote after it',
    'On Monday the intern wrote:\nthe deploy script. Please review it.',
    'On Monday the intern wrote:\nthe deploy script. Please review it.',
  ],
  [
    'a forwarded message, which is content',
    'Please look at this.\n\nBegin forwarded message:\n\nFrom: Bob <bob@example.com>\nSubject: Outage\n\nThe site is down.\n',
    'Please look at this.\n\nBegin forwarded message:\n\nFrom: Bob <bob@example.com>\nSubject: Outage\n\nThe site is down.',
  ],
  ['a message that is all quote', '> only quoted\n> text\n', '> only quoted\n> text'],
];

for (const [client, input, expected] of plain) {
  test(`strips the quote of a reply from ${client}`, () => {
    assert.equal(stripQuoted(input), expected);
  });
}

const html: Array<[string, string, string]> = [
  [
    'Gmail',
    '<div dir="ltr">Yes, go ahead.</div><br><div class="gmail_quote"><div class="gmail_attr">On Mon wrote:</div><blockquote class="gmail_quote">Shall I merge?</blockquote></div>',
    'Yes, go ahead.',
  ],
  [
    'Outlook',
    '<div>Looks good.</div><div id="appendonsend"></div><hr><div id="divRplyFwdMsg"><b>From:</b> errand</div><div>Done.</div>',
    'Looks good.',
  ],
  [
    'Apple Mail',
    '<div>Ship it.</div><div><br><blockquote type="cite"><div>Done.</div></blockquote></div>',
    'Ship it.',
  ],
  [
    'Thunderbird',
    '<p>Thanks.</p><div class="moz-cite-prefix">On 11/3/25 errand wrote:</div><blockquote type="cite">Done.</blockquote>',
    'Thanks.',
  ],
];

for (const [client, input, expected] of html) {
  test(`turns an HTML-only reply from ${client} into its new text`, () => {
    assert.equal(htmlToText(input), expected);
  });
}

test('HTML keeps links and tables readable, and drops images, scripts and styles', () => {
  const text = htmlToText(
    '<style>p{color:red}</style><script>alert(1)</script><p>See <a href="https://ci.example.com/1">the run</a>.</p><img src="data:image/png;base64,AAAA"><table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>',
  );
  assert.match(text, /See the run \(https:\/\/ci\.example\.com\/1\)\./);
  assert.match(text, /a +b\n1 +2/);
  assert.doesNotMatch(text, /alert|color:red|data:image/);
});

test('a Gmail forward in HTML is kept', () => {
  const text = htmlToText(
    '<div>FYI</div><div class="gmail_quote"><div class="gmail_attr">---------- Forwarded message ---------<br>From: Bob</div><div>The site is down.</div></div>',
  );
  assert.match(text, /The site is down\./);
});
