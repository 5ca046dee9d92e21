/** A label of a name errand accepts: ASCII letters (any case), digits, `-` and `_`, 1 to 63 long. */
const LABEL = /^[a-z0-9_-]{1,63}$/;

/**
 * The one form of a host name the proxy checks, scopes credentials to, resolves, names in
 * the upstream's TLS handshake and sends as the Host header: lower case, one trailing dot
 * removed. Undefined when `name` is not a host name: empty labels (`a..b`, a leading dot, a
 * second trailing dot), characters outside letters, digits, `-` and `_` (so no bracketed
 * IPv6 literal, no Unicode that lower-cases to ASCII), over 253 characters.
 *
 * One function for every use, because two spellings of a name that are treated alike in one
 * place and apart in another are a way around a rule (`api.example.` matched the allowlist
 * but missed the operator's `network.resolve` mapping and went to DNS).
 */
export function canonicalHost(name: string): string | undefined {
  // Checked before lower-casing: some non-ASCII letters lower-case to ASCII (K, U+212A).
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) return undefined;
  const h = (name.endsWith('.') ? name.slice(0, -1) : name).toLowerCase();
  if (h.length === 0 || h.length > 253) return undefined;
  return h.split('.').every((l) => LABEL.test(l)) ? h : undefined;
}
