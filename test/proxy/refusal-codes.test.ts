import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

// The refusal-code table in docs/security.md is what the agent and the operator read: it
// must list every code the proxy sends, and each must be sent in some test for real.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function filesUnder(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(dir, f));
}

function tableCodes(): string[] {
  const doc = readFileSync(join(ROOT, 'docs/security.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Refusal codes'));
  const table = section.slice(
    0,
    section.indexOf('\n## ') > 0 ? section.indexOf('\n## ') : undefined,
  );
  return table
    .split('\n')
    .filter((l) => /^\| `/.test(l))
    .flatMap((l) => [...l.split('|')[1]!.matchAll(/`([a-z0-9_]+)`/g)].map((m) => m[1]!));
}

/** The codes the proxy can send: every `code: '…'` literal and the deny codes of `decide`. */
function sourceCodes(): Set<string> {
  const codes = new Set<string>();
  for (const f of filesUnder('src/proxy')) {
    const text = readFileSync(join(ROOT, f), 'utf8');
    for (const m of text.matchAll(/code: '([a-z0-9_]+)'/g)) codes.add(m[1]!);
    const union = /export type DenyCode =([^;]+);/.exec(text);
    if (union) for (const m of union[1]!.matchAll(/'([a-z0-9_]+)'/g)) codes.add(m[1]!);
  }
  return codes;
}

describe('the refusal-code table in docs/security.md', () => {
  const codes = tableCodes();

  it('lists every code the proxy sends', () => {
    assert.ok(codes.length > 10, `the table was found (${codes.length} codes)`);
    const missing = [...sourceCodes()].filter((c) => !codes.includes(c));
    assert.deepEqual(missing, [], 'codes sent by src/proxy but not in the table');
  });

  it('lists each code once', () => {
    assert.deepEqual(
      codes.filter((c, i) => codes.indexOf(c) !== i),
      [],
    );
  });

  it('has, for each code, a test that provokes it and asserts it', () => {
    const self = relative(ROOT, fileURLToPath(import.meta.url));
    const tests = filesUnder('test')
      .filter((f) => f.endsWith('.test.ts') && f !== self)
      .map((f) => readFileSync(join(ROOT, f), 'utf8'));
    // Asserted as a string, in a pattern, or as the header the proxy sends.
    const untested = codes.filter(
      (c) => !tests.some((t) => new RegExp(`(['"/]|x-errand-block: )${c}\\b`).test(t)),
    );
    assert.deepEqual(untested, [], 'codes no test asserts');
  });
});
