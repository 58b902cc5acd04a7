export {
  createNotifier,
  encodeSockaddrUn,
  type Notifier,
  type NotifierOptions,
  NotifySocketError,
  watchdogIntervalMs,
} from "./notify.ts";
export { type GateDecision, startWatchdog, type WatchdogOptions, WatchdogGate } from "./watchdog.ts";
