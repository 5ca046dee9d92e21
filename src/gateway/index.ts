export {
  type ChannelFactory,
  type DeleteResult,
  Gateway,
  type GatewayOptions,
  type ScheduleRunResult,
  type StopResult,
  type UndeletedConversation,
} from './gateway.ts';
export type * from './ports.ts';
