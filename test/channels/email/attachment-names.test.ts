import assert from 'node:assert/strict';
import { test } from 'node:test';
import { safeFileName, uniqueFileNames } from '../../../src/util/file-names.ts';

const cases: Array<[string, string | undefined, string]> = [
  ['drops a Unix path', '../../etc/passwd', 'passwd'],
  ['drops a Windows path', '..\\..\\boot.ini', 'boot.ini'],
  ['drops NUL and control characters', 'evil\u0000.sh\u0007', 'evil.sh'],
  [
    'drops a right-to-left override that disguises the extension',
    'invoice\u202Etxt.exe',
    'invoicetxt.exe',
  ],
  ['makes hidden files visible', '.bashrc', 'bashrc'],
  ['replaces shell and markup characters', 'a$(rm -rf)`x`<b>.txt', 'a_(rm -rf)_x_b_.txt'],
  ['keeps letters of any script', 'Übersicht 日本.txt', 'Übersicht 日本.txt'],
  ['falls back for a bare dot-dot', '..', 'attachment-1'],
  ['falls back for no name', undefined, 'attachment-1'],
  ['falls back for a Windows device name', 'CON.txt', 'attachment-1'],
];

for (const [what, input, expected] of cases) {
  test(`attachment names: ${what}`, () => {
    assert.equal(safeFileName(input, 'attachment-1'), expected);
  });
}

test('attachment names: a very long name is cut to 120 bytes and keeps its extension', () => {
  const name = safeFileName(`${'ü'.repeat(200)}.pdf`, 'x');
  assert.ok(Buffer.byteLength(name) <= 120);
  assert.ok(name.endsWith('.pdf'));
});

test('attachment names: duplicates get (2), (3) before the extension, ignoring case', () => {
  assert.deepEqual(uniqueFileNames(['a.txt', 'A.txt', 'a.txt', 'b']), [
    'a.txt',
    'A (2).txt',
    'a (3).txt',
    'b',
  ]);
});
