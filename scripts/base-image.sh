#!/usr/bin/env bash
# Builds errand's base image (Debian bookworm, minimal, with git, curl and CA certificates)
# from Debian's packages, since no image registry is reachable here. Skips the build when
# the image exists; --force rebuilds it.
set -euo pipefail
IMAGE="localhost/errand-base:bookworm"
# Bump when the package list changes, so machines with an older image rebuild it.
VERSION=2
state="${XDG_STATE_HOME:-$HOME/.local/state}/errand"
mkdir -p "$state/podman"
# The same settings errand writes (src/sandbox/podman.ts): runc, ulimits within hard limits.
conf="$state/podman/containers.conf"
nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] || [ "$nofile" -gt 20000 ] && nofile=20000
cat > "$conf" <<CONF
# Written by errand; changes are overwritten.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]

[engine]
runtime = "runc"
CONF
export CONTAINERS_CONF="$conf"

have=$(podman image inspect --format '{{index .Labels "errand.base.version"}}' "$IMAGE" 2>/dev/null || true)
if [ "${1:-}" != "--force" ] && [ "$have" = "$VERSION" ]; then
  echo "$IMAGE version $VERSION exists (use --force to rebuild)"
  exit 0
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "building $IMAGE with mmdebstrap (about 20 s)"
mmdebstrap --quiet --variant=minbase --include=ca-certificates,git,curl,procps,nodejs bookworm "$tmp/rootfs.tar"
podman import --quiet --change 'CMD ["/bin/bash"]' --change "LABEL errand.base.version=$VERSION" "$tmp/rootfs.tar" "$IMAGE" >/dev/null
echo "built $IMAGE"
