#!/usr/bin/env bash
# Quick start: set up this checkout and run `errand start` on its embedded defaults.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
node_path="$(bash "$root/scripts/setup.sh" | tail -n 1)"
# The Node flags of ERRAND_NODE_FLAGS in src/cli/node-flags.ts (a test holds them equal).
exec "$node_path" --optimize-for-size "$root/src/cli/errand.ts" start "$@"
