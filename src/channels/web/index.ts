export { WebChannel, type WebSubmission } from './web-channel.ts';
