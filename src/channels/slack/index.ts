export { probeSlack } from './probe.ts';
export { SlackChannel, type SlackChannelOptions } from './slack-channel.ts';
