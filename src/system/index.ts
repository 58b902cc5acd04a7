export {
  createNotifier,
  encodeSockaddrUn,
  type Notifier,
  type NotifierOptions,
  NotifySocketError,
  watchdogIntervalMs,
} from "./notify.ts";
export type { SystemStatus } from "./status.ts";
export { statusLine } from "./status-line.ts";
export { type GateDecision, startWatchdog, WatchdogGate, type WatchdogOptions } from "./watchdog.ts";
