/**
 * What the Slack app must be allowed, and nothing more: docs/slack-app-manifest.json is
 * checked against these by a test, so the manifest people install stays exact.
 */

/** Bot token scopes, each with the API use that needs it. */
export const BOT_SCOPES: Record<string, string> = {
  'app_mentions:read': 'app_mention events in channels',
  'channels:history': 'messages in public channel threads the bot follows, conversations.replies',
  'groups:history': 'the same in private channels',
  'im:history': 'direct messages to the bot',
  'chat:write': 'replies and the progress message (chat.postMessage, chat.update)',
  'reactions:write': 'received / done / failed reactions',
  'users:read': 'users.info: bots, guests, deactivated users, display names',
  'usergroups:read': 'usergroups.users.list for authorized user groups',
  'files:read': 'downloading files shared in a thread',
  'files:write': 'uploading outbox files and long replies',
};

/** Bot events the channel subscribes to. */
export const BOT_EVENTS = ['app_mention', 'message.channels', 'message.groups', 'message.im'];
