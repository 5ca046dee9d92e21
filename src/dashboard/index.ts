export { sha256Hex } from './access.ts';
export { dashboardExposure, type Exposure } from './exposure.ts';
export { DASHBOARD_LIMITS, type DashboardLimits } from './limits.ts';
export { createDashboard, type Dashboard, type DashboardOptions } from './server.ts';
