/** Regenerates the key table in docs/configuration.md from the config schema. */
import { readFileSync, writeFileSync } from 'node:fs';
import { configReferenceTable } from '../src/config/reference.ts';

const path = new URL('../docs/configuration.md', import.meta.url);
const text = readFileSync(path, 'utf8');
const begin = '<!-- generated: config keys -->';
const end = '<!-- end generated -->';
const i = text.indexOf(begin);
const j = text.indexOf(end);
if (i < 0 || j < i) throw new Error(`docs/configuration.md lacks the ${begin} ... ${end} markers`);
writeFileSync(
  path,
  `${text.slice(0, i + begin.length)}\n${configReferenceTable()}\n${text.slice(j)}`,
);
console.log('docs/configuration.md updated');
