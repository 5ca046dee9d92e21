#!/usr/bin/env bash
# Quick start: set up this checkout and run `errand start` on its embedded defaults.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
node_path="$(bash "$root/scripts/setup.sh" | tail -n 1)"
exec "$node_path" "$root/src/cli/errand.ts" start "$@"
