export { sha256Hex } from './access.ts';
export { createDashboard, type Dashboard, type DashboardOptions } from './server.ts';
