export { type ControlApiOptions, createControlApi } from './control-api.ts';
