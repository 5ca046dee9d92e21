import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { BOT_EVENTS, BOT_SCOPES } from '../../../src/channels/slack/app-manifest.ts';

const manifest = JSON.parse(
  readFileSync(new URL('../../../docs/slack-app-manifest.json', import.meta.url), 'utf8'),
) as {
  oauth_config: { scopes: { bot: string[]; user?: string[] } };
  settings: { event_subscriptions: { bot_events: string[] }; socket_mode_enabled: boolean };
};

test('the app manifest asks for exactly the scopes the channel uses, and no user scopes', () => {
  assert.deepEqual([...manifest.oauth_config.scopes.bot].sort(), Object.keys(BOT_SCOPES).sort());
  assert.equal(manifest.oauth_config.scopes.user, undefined);
});

test('the app manifest subscribes to exactly the events the channel handles, over Socket Mode', () => {
  assert.deepEqual(
    [...manifest.settings.event_subscriptions.bot_events].sort(),
    [...BOT_EVENTS].sort(),
  );
  assert.equal(manifest.settings.socket_mode_enabled, true);
});
