/** Rows as stored (readings_v) and their mapping back to QueuedReading. */
import type { QueuedReading } from "./types.ts";

export interface Row {
  seq: number;
  stream: string;
  priority: number;
  qos: number;
  boot_id: string;
  mono_ns: string;
  wall_ms: number;
  tq: string;
  vals: string;
  anomaly: number;
  bytes: number;
  inflight: number;
}

export const ROW_COLUMNS =
  "seq, stream, priority, qos, boot_id, CAST(mono_ns AS TEXT) AS mono_ns, wall_ms, tq, vals, anomaly, bytes, inflight";

/** ReadingRow is what rowToReading reads: a row's reading columns, without the queue's bookkeeping. */
export type ReadingRow = Omit<Row, "bytes" | "inflight">;

export function rowToReading(row: ReadingRow): QueuedReading {
  const r: QueuedReading = {
    seq: row.seq,
    stream: row.stream,
    priority: row.priority,
    qos: row.qos as QueuedReading["qos"],
    bootId: row.boot_id,
    monoNs: BigInt(row.mono_ns),
    wallMs: row.wall_ms,
    tq: row.tq as QueuedReading["tq"],
    values: JSON.parse(row.vals) as QueuedReading["values"],
  };
  if (row.anomaly) r.anomaly = true;
  return r;
}
