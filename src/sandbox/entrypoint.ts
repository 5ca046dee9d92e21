import type { ContainerFile } from './container-folders.ts';

/** Where errand's own files appear in every sandbox, read-only. */
export const ERRAND_DIR = '/opt/errand';
export const ENTRYPOINT = `${ERRAND_DIR}/entrypoint.sh`;
export const CLAUDE_BIN = `${ERRAND_DIR}/bin/claude`;
/** errand's CA certificate, when the sandbox's traffic goes through the proxy. */
export const CA_CERT = `${ERRAND_DIR}/ca.pem`;

/**
 * Runs before every command in a sandbox: errand's tools first on PATH, the flag Claude
 * Code needs to accept --dangerously-skip-permissions as root, and a HOME that exists.
 */
export const ENTRYPOINT_SCRIPT = `#!/bin/sh
# Written by errand; mounted read-only at ${ENTRYPOINT}.
export PATH="${ERRAND_DIR}/bin:\${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}"
export IS_SANDBOX=1
export HOME="\${HOME:-/root}"
[ -d "$HOME" ] || mkdir -p "$HOME" 2>/dev/null || export HOME=/tmp
# Trust errand's proxy: in the system store when the image has one we can write, and in a
# bundle named by the variables common tools read.
if [ -f ${CA_CERT} ]; then
  bundle=/etc/ssl/certs/ca-certificates.crt
  if [ -w "$bundle" ]; then
    cat ${CA_CERT} >> "$bundle"
  else
    bundle=/tmp/errand-ca-bundle.pem
    { cat /etc/ssl/certs/ca-certificates.crt 2>/dev/null; cat ${CA_CERT}; } > "$bundle"
  fi
  export NODE_EXTRA_CA_CERTS=${CA_CERT} SSL_CERT_FILE="$bundle" REQUESTS_CA_BUNDLE="$bundle" GIT_SSL_CAINFO="$bundle" CURL_CA_BUNDLE="$bundle"
fi
exec "$@"
`;

/** The entrypoint, as each container's own read-only copy. */
export const ENTRYPOINT_FILE: ContainerFile = {
  target: ENTRYPOINT,
  content: ENTRYPOINT_SCRIPT,
  executable: true,
};
