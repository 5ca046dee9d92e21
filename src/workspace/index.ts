/**
 * Workspaces: a bare mirror per repository, a self-contained clone and host folders per
 * conversation, and the trusted `.errand/` files read from the mirror's default branch.
 */

export {
  type Checkout,
  checkoutDefaultCommit,
  checkoutHasCommit,
  checkoutOriginUrl,
  findCheckout,
} from './checkout.ts';
export {
  clearOutbox,
  describeSkipped,
  OUTBOX_ENTRY_LIMIT,
  OUTBOX_FILE_LIMIT_BYTES,
  OUTBOX_LIMITS,
  OUTBOX_TOTAL_LIMIT_BYTES,
  type OutboxLimits,
  type SkippedFile,
  type TakenFile,
  type TakenOutbox,
  takeOutbox,
} from './outbox.ts';
export {
  FULL_OBJECT_ID,
  MAX_TRUSTED_DIR_BYTES,
  MAX_TRUSTED_DIR_ENTRIES,
  MAX_TRUSTED_FILE_BYTES,
  TrustedTree,
} from './trusted-tree.ts';
export {
  type ConversationDirs,
  type MirrorState,
  type WorkspaceRepo,
  Workspaces,
} from './workspaces.ts';
