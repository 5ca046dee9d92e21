/**
 * The Node flags errand's process is started with, on every launch path: the `errand`
 * command's shebang (src/cli/errand.ts), scripts/start.sh and the systemd unit
 * (service.ts); test/cli/node-flags.test.ts holds each to this list.
 *
 * `--optimize-for-size`: V8 keeps its young generation small and collects the old one
 * before it grows far past what is live. Draining a backlog of 10,000 mails, errand's live
 * heap stays near 45 MB, yet with V8's defaults its process grew to 300–430 MB, nearly all
 * of it garbage V8 had not yet collected; with this flag it stays under 170 MB. The price
 * is CPU: more, smaller collections, and about 45% more CPU per MB the proxy relays
 * (docs/gateway.md, memory under a backlog).
 */
export const ERRAND_NODE_FLAGS: readonly string[] = ['--optimize-for-size'];
