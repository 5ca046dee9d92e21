import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { configReferenceTable } from '../../src/config/reference.ts';

describe('docs/configuration.md', () => {
  const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
  const table = configReferenceTable();

  it('lists exactly the keys the schema accepts (regenerate with scripts/gen-docs.ts)', () => {
    assert.ok(doc.includes(`<!-- generated: config keys -->\n${table}\n<!-- end generated -->`));
  });

  it('says what every key means', () => {
    const blank = table.split('\n').filter((row) => /\|\s*\|$/.test(row));
    assert.deepEqual(blank, []);
  });
});
