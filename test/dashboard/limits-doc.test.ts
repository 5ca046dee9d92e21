import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { DASHBOARD_LIMITS } from '../../src/dashboard/index.ts';

it('docs/dashboard.md lists every dashboard limit with the value errand uses', () => {
  const doc = readFileSync(new URL('../../docs/dashboard.md', import.meta.url), 'utf8');
  const rows = [...doc.matchAll(/^\| `(\w+)` \| (\d+)\b/gm)].map((m) => [m[1], Number(m[2])]);
  assert.deepEqual(Object.fromEntries(rows), { ...DASHBOARD_LIMITS });
});
