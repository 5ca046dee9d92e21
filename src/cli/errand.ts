#!/usr/bin/env -S node --optimize-for-size
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EXIT } from './exit-codes.ts';
import { nodeVersionProblem } from './node-version.ts';

// The `errand` command's entry. It imports only what every Node has: on an older one the
// rest of errand (its node:sqlite, for one) fails as it loads, before it could say why.
// The shebang carries ERRAND_NODE_FLAGS (src/cli/node-flags.ts); `env -S` splits them.
if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const problem = nodeVersionProblem(process.versions.node);
  if (problem) {
    process.stderr.write(`errand: ${problem}\n`);
    process.exitCode = EXIT.failure;
  } else {
    const { main } = await import('./main.ts');
    process.exitCode = await main(process.argv.slice(2));
  }
}
