/**
 * The house plan (docs/architecture.md): which parts of src/ may import which. A forbidden
 * import fails here, naming the file and the line, before the parts grow into each other.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

/** Part → parts it must not import. A part is a folder directly under src/. */
const PARTS = [
  'agent',
  'channels',
  'cli',
  'config',
  'dashboard',
  'execution',
  'gateway',
  'proxy',
  'sandbox',
  'store',
  'util',
  'workspace',
];

const FORBIDDEN: Record<string, string[]> = {
  // The vocabulary every part speaks imports none of them.
  domain: PARTS,
  // The gateway orchestrates: it reaches task execution only through TaskExecutor.
  gateway: ['execution', 'sandbox', 'proxy', 'agent', 'workspace', 'channels', 'dashboard', 'cli'],
  // Channels, the sandbox, the proxy and the agent never import each other.
  channels: ['sandbox', 'agent', 'proxy', 'execution'],
  sandbox: ['channels', 'agent', 'proxy', 'gateway', 'execution'],
  agent: ['channels', 'sandbox', 'proxy'],
  proxy: ['channels', 'sandbox', 'agent', 'gateway', 'store', 'execution'],
  execution: ['channels', 'dashboard', 'cli'],
  store: ['gateway', 'execution'],
  config: ['gateway', 'execution'],
};

function* sources(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) yield* sources(path);
    else if (e.name.endsWith('.ts')) yield path;
  }
}

/** Every module a file names: static and type imports, re-exports, dynamic imports. */
function importsOf(text: string): Array<{ specifier: string; line: number }> {
  const found: Array<{ specifier: string; line: number }> = [];
  const pattern = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/gm;
  for (const m of text.matchAll(pattern)) {
    found.push({ specifier: m[1]!, line: text.slice(0, m.index).split('\n').length });
  }
  return found;
}

function partOf(path: string): string | undefined {
  const rel = relative(SRC, path);
  if (rel.startsWith('..')) return undefined;
  return rel.includes(sep) ? rel.split(sep)[0] : undefined;
}

function violations(): string[] {
  const found: string[] = [];
  for (const file of sources(SRC)) {
    const from = partOf(file)!;
    const forbidden = FORBIDDEN[from] ?? [];
    for (const { specifier, line } of importsOf(readFileSync(file, 'utf8'))) {
      if (!specifier.startsWith('.')) continue;
      const to = partOf(resolve(dirname(file), specifier));
      if (to && forbidden.includes(to))
        found.push(`${relative(SRC, file)}:${line} imports ${to} (${specifier})`);
    }
  }
  return found;
}

it('no part of src/ imports a part the house plan forbids it', () => {
  const folders = readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory());
  // A new part must be placed in the plan (here and in docs/architecture.md) before it grows.
  assert.deepEqual(
    folders.map((e) => e.name).filter((n) => n !== 'domain' && n !== 'types' && !PARTS.includes(n)),
    [],
  );
  assert.deepEqual(violations(), []);
});

it('sees a forbidden import in every form one can be written', () => {
  const forms = [
    "import { x } from '../sandbox/index.ts';",
    "import type { X } from '../sandbox/index.ts';",
    "export { x } from '../sandbox/index.ts';",
    "const m = await import('../sandbox/index.ts');",
    "import '../sandbox/index.ts';",
  ];
  for (const form of forms)
    assert.deepEqual(
      importsOf(form).map((i) => i.specifier),
      ['../sandbox/index.ts'],
      form,
    );
});
