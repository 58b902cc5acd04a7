export { assertListenAllowed, HealthConfigError, isAuthorized } from "./auth.ts";
export {
  type Check,
  type CheckState,
  evaluateHealth,
  type HealthReport,
  type HealthState,
  type HealthThresholds,
  thresholdsFromConfig,
} from "./evaluate.ts";
export { type LoopLag, startLoopLag } from "./loop-lag.ts";
export { createMetrics, type Metrics, type MetricsSnapshot } from "./metrics.ts";
export {
  type HealthBody,
  type HealthServer,
  type HealthServerOptions,
  healthBody,
  monoNowMs,
  startHealthServer,
} from "./server.ts";
export type { HealthStatus, SensorHealth } from "./snapshot.ts";
export { decodeThrottled, parseThrottled, type ThrottleFlags, type ThrottleState } from "./throttle.ts";
export {
  createVitalsReader,
  type DiskSpace,
  type Vitals,
  type VitalsOptions,
  type VitalsReader,
} from "./vitals.ts";
