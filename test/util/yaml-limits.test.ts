import assert from 'node:assert/strict';
import { it } from 'node:test';
import { parseDocument } from 'yaml';
import { YAML_LIMITS, yamlShapeProblem, yamlValue } from '../../src/util/yaml-limits.ts';
import { ALIAS_BOMB } from '../harness/hostile-yaml.ts';

const nested = (depth: number) => `${'['.repeat(depth)}x${']'.repeat(depth)}`;

it('refuses flow collections nested one level past the limit, and reads them at the limit', () => {
  assert.match(String(yamlShapeProblem(nested(YAML_LIMITS.depth + 1))), /more than 64 levels/);
  assert.equal(yamlShapeProblem(nested(YAML_LIMITS.depth)), undefined);
});

it('counts block indicators on one line as nesting too', () => {
  assert.match(String(yamlShapeProblem(`${'- '.repeat(65)}x\n`)), /more than 64 levels/);
  assert.equal(yamlShapeProblem(`${'- '.repeat(64)}x\n`), undefined);
});

it('does not count brackets inside scalars, comments or across lines of a block', () => {
  const text = [
    `run: echo ${'['.repeat(100)}`,
    `quoted: "${'{'.repeat(100)}"`,
    `# ${'['.repeat(100)}`,
    ...Array.from({ length: 100 }, (_, i) => `${' '.repeat(i * 2)}k${i}:`),
    '',
  ].join('\n');
  assert.equal(yamlShapeProblem(text), undefined);
});

it('refuses text one byte past the size limit, and reads it at the limit', () => {
  assert.match(
    String(yamlShapeProblem('#'.repeat(YAML_LIMITS.bytes + 1))),
    /1048577 bytes, more than the 1 MiB/,
  );
  assert.equal(yamlShapeProblem('#'.repeat(YAML_LIMITS.bytes)), undefined);
});

it('turns an alias bomb into a problem naming the limit, and expands a few aliases', () => {
  const bomb = yamlValue(parseDocument(ALIAS_BOMB));
  assert.equal(bomb.ok, false);
  assert.match(!bomb.ok ? bomb.problem : '', /expand past errand's limit of 100 alias uses/);
  const few = yamlValue(parseDocument('a: &v [1, 2]\nb: *v\nc: *v\n'));
  assert.deepEqual(few, { ok: true, value: { a: [1, 2], b: [1, 2], c: [1, 2] } });
});
