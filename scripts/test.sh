#!/usr/bin/env bash
# The one test command: formatter and linter, type check, then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
node_path="$(bash scripts/setup.sh | tail -n 1)"
export PATH="$(dirname "$node_path"):$PATH"
echo "== lint and format (biome)"
npx --no-install biome ci .
echo "== type check (tsc --noEmit)"
npx --no-install tsc --noEmit -p tsconfig.json
echo "== tests (node --test)"
exec node --test --test-concurrency=2 --test-timeout=300000 "${@:-test/**/*.test.ts}"
