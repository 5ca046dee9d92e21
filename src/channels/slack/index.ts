export { SlackChannel, type SlackChannelOptions } from './slack-channel.ts';
