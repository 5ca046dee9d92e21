export { EmailChannel, type EmailChannelOptions, MAX_MESSAGE_BYTES } from './email-channel.ts';
