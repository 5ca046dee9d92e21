export { redactUrl } from './git.ts';
export { checkoutDefaultRef, TrustedTree } from './trusted-tree.ts';
export { type ConversationDirs, type WorkspaceRepo, Workspaces } from './workspaces.ts';
