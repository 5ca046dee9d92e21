export { EmailChannel, type EmailChannelOptions } from './email-channel.ts';
