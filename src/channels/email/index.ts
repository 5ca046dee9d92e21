export { EmailChannel, type EmailChannelOptions } from './email-channel.ts';
export { probeEmail } from './probe.ts';
