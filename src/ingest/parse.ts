/**
 * Parsing of POST /v1/readings bodies: one JSON object, or NDJSON (one object per line). Either
 * every reading in a body is valid and all are queued, or none is and the answer says which line
 * is wrong and why. Pure: no I/O, no clock.
 */
import * as z from "zod";
import { streamName } from "../config/schema.ts";
import type { FieldValue, QoS } from "../queue/types.ts";

/** The most a producer's timestamp may lie in the past, measured on this device's own clock. */
export const MAX_TS_AGE_MS = 24 * 60 * 60 * 1000;
/** Tolerated clock skew between a producer and fieldrelay on the same device. */
export const MAX_TS_FUTURE_MS = 60 * 1000;

const valueSchema = z.union(
  [z.number().refine(Number.isFinite, "numbers must be finite"), z.string().max(1024), z.boolean()],
  {
    error: "values must be numbers, strings or booleans",
  },
);

const readingSchema = z.strictObject({
  stream: streamName(),
  values: z
    .record(
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, "value names are letters, digits and '_'"),
      valueSchema,
    )
    .refine((v) => Object.keys(v).length > 0, "values must name at least one value"),
  priority: z.int().min(1).max(10).optional(),
  qos: z.union([z.literal(0), z.literal(1), z.literal(2)], { error: "qos must be 0, 1 or 2" }).optional(),
  ts: z.iso
    .datetime({ offset: true, error: "ts must be an ISO-8601 date-time, e.g. 2026-11-25T10:00:00.000Z" })
    .optional(),
});

export interface IngestReading {
  stream: string;
  values: Record<string, FieldValue>;
  priority: number;
  qos: QoS;
  /** How long before receipt the producer says it measured, ms (from ts); 0 without ts. */
  ageMs: number;
}

export type ParseResult = { ok: true; readings: IngestReading[] } | { ok: false; error: string };

export interface ParseDefaults {
  priority: number;
  qos: QoS;
}

export function parseReadings(body: string, nowWallMs: number, defaults: ParseDefaults): ParseResult {
  const lines = body.split("\n").filter((l) => l.trim() !== "");
  if (lines.length === 0) return { ok: false, error: "empty body: send one JSON object or NDJSON lines" };
  const readings: IngestReading[] = [];
  for (const [index, line] of lines.entries()) {
    const where = lines.length > 1 ? `line ${index + 1}: ` : "";
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch (error) {
      return { ok: false, error: `${where}bad JSON: ${(error as Error).message}` };
    }
    const result = readingSchema.safeParse(json);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      const path = issue.path.length ? `${issue.path.join(".")}: ` : "";
      return { ok: false, error: `${where}${path}${issue.message}` };
    }
    const r = result.data;
    let ageMs = 0;
    if (r.ts !== undefined) {
      ageMs = nowWallMs - Date.parse(r.ts);
      if (ageMs < -MAX_TS_FUTURE_MS || ageMs > MAX_TS_AGE_MS) {
        return {
          ok: false,
          error: `${where}ts: must be within the last 24 h and not in the future by this device's clock`,
        };
      }
      ageMs = Math.max(0, ageMs);
    }
    readings.push({
      stream: r.stream,
      values: r.values,
      priority: r.priority ?? defaults.priority,
      qos: (r.qos ?? defaults.qos) as QoS,
      ageMs,
    });
  }
  return { ok: true, readings };
}
