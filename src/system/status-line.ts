import type { SystemStatus } from "./status.ts";

/**
 * statusLine is the one-line STATUS= text `systemctl status fieldrelay` shows, e.g.
 * "3 sensors; queue 12 rows (oldest 4 s); broker up, 2 inflight; clock ntp".
 */
export function statusLine(s: SystemStatus): string {
  const failing = s.sensors.filter((x) => x.lastError !== undefined).length;
  const sensors = `${s.sensors.length} sensor${s.sensors.length === 1 ? "" : "s"}${failing ? ` (${failing} failing)` : ""}`;
  const queue = `queue ${s.queue.rows} rows${s.queue.rows > 0 ? ` (oldest ${Math.round(s.queue.oldestUnsentAgeS)} s)` : ""}${s.queue.refusing ? " REFUSING" : ""}`;
  const broker = s.publisher.connected
    ? `broker up, ${s.publisher.inflight} inflight`
    : `broker down, retry in ${Math.round(s.publisher.backoffS)} s`;
  return `${sensors}; ${queue}; ${broker}; clock ${s.clock.synced ? s.clock.source : "unsynced"}`;
}
