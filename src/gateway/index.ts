export {
  type ChannelFactory,
  Gateway,
  type GatewayOptions,
  type ScheduleRunResult,
  type StopResult,
} from './gateway.ts';
export type * from './ports.ts';
