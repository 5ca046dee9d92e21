export { redactUrl } from './git.ts';
export { type ConversationDirs, type WorkspaceRepo, Workspaces } from './workspaces.ts';
