#!/usr/bin/env bash
# Prepares a checkout to run: Node 24 (cached), npm dependencies from the lockfile.
# Idempotent; prints the path of the node binary to use on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
node_path="$(bash scripts/node.sh -p 'process.execPath')"
node_dir="$(dirname "$node_path")"
export PATH="$node_dir:$PATH"
stamp="node_modules/.errand-lock-stamp"
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  echo "errand: installing npm dependencies" >&2
  npm ci --no-audit --no-fund >&2
  cp package-lock.json "$stamp"
fi
echo "$node_path"
