/**
 * The sink's PostgreSQL side: one call, writeBatch, stores a group of messages in ONE transaction
 * (group commit) and resolves only after COMMIT. What one transaction does, in order:
 *
 *   1. Advisory locks on every (device, boot) the batch touches that a clock correction can
 *      change: exclusive for a clock message, shared for readings that still carry boot+mono_ms.
 *      Taken in one statement, sorted by key, so two sinks never deadlock. They make "readings
 *      inserted" and "correction applied" serial per boot: whichever commits second sees the
 *      other, so a correction applies in either arrival order (no lost update between sinks).
 *   2. Clock messages: merge the anchors into <table>_clock (a union: an older message arriving
 *      after a newer one only adds what is missing); when the union grew, re-stamp that boot's
 *      stored rows with it (restamp(): only rows whose error bound improves are updated).
 *   3. Readings: re-stamp with the stored anchors of their boot, then INSERT … ON CONFLICT
 *      (device, seq) DO NOTHING — resends and redeliveries land once; the difference is counted
 *      as duplicates.
 *   4. Dead letters: inserted with topic, payload, kind and reason.
 *
 * Nothing here acknowledges anything: the caller acks a message after writeBatch resolved.
 */
import type { SQL } from "bun";
import type { ReadingRow } from "./classify.ts";
import { type TableNames, tableNames } from "./schema.ts";
import { type ClockAnchor, type ClockMessage, restamp } from "./wire.ts";

export type Work =
  | { kind: "readings"; rows: ReadingRow[] }
  | { kind: "clock"; message: ClockMessage }
  | { kind: "dead"; topic: string; payload: Uint8Array; dead: string; reason: string }
  /** Acknowledged in turn, nothing stored (the edge's status and command topics). */
  | { kind: "ignored" };

export interface BatchResult {
  inserted: number;
  duplicates: number;
  corrected: number;
  deadLetters: number;
}

export interface Store {
  writeBatch(works: Work[]): Promise<BatchResult>;
}

const keyOf = (device: string, boot: string) => `${device}\u0000${boot}`;

/** Anchors merged as a set: the same anchor published again (every clock message repeats them) counts once. */
export function mergeAnchors(a: ClockAnchor[], b: ClockAnchor[]): ClockAnchor[] {
  const seen = new Map<string, ClockAnchor>();
  for (const x of [...a, ...b]) {
    const anchor: ClockAnchor = {
      mono_ms: x.mono_ms,
      wall_ms: x.wall_ms,
      src: x.src,
      err_ms: x.err_ms,
      ppm: x.ppm,
    };
    if (x.rate_ppm !== undefined && x.rate_ppm !== 0) anchor.rate_ppm = x.rate_ppm;
    seen.set(JSON.stringify(anchor), anchor);
  }
  return [...seen.values()].sort((x, y) => x.mono_ms - y.mono_ms || x.wall_ms - y.wall_ms);
}

const correctable = (r: { boot: string | null; monoMs: number | null; tq: string }) =>
  r.boot !== null && r.monoMs !== null && r.tq !== "ntp";

export function createPgStore(sql: SQL, table: string): Store {
  const t: TableNames = tableNames(table);

  async function lock(tx: SQL, keys: Map<string, { device: string; boot: string; exclusive: boolean }>) {
    if (keys.size === 0) return;
    const list = [...keys.values()];
    await tx.unsafe(
      `SELECT CASE WHEN k.x THEN pg_advisory_xact_lock(h.h)::text ELSE pg_advisory_xact_lock_shared(h.h)::text END
         FROM unnest($1::text[], $2::text[], $3::bool[]) AS k(d, b, x),
              LATERAL (SELECT hashtextextended(k.d || '/' || k.b, 0) AS h) AS h
        ORDER BY h.h`,
      [list.map((k) => k.device), list.map((k) => k.boot), list.map((k) => k.exclusive)],
    );
  }

  async function anchorsOf(tx: SQL, pairs: Array<{ device: string; boot: string }>) {
    const out = new Map<string, ClockAnchor[]>();
    if (pairs.length === 0) return out;
    const rows = (await tx.unsafe(
      `SELECT c.device, c.boot::text AS boot, c.anchors FROM ${t.clock} c
         JOIN unnest($1::text[], $2::uuid[]) AS k(d, b) ON c.device = k.d AND c.boot = k.b`,
      [pairs.map((p) => p.device), pairs.map((p) => p.boot)],
    )) as Array<{ device: string; boot: string; anchors: string | ClockAnchor[] }>;
    for (const r of rows)
      out.set(keyOf(r.device, r.boot), typeof r.anchors === "string" ? JSON.parse(r.anchors) : r.anchors);
    return out;
  }

  /** Merge one boot's anchors; when they grew, re-stamp its stored rows. Returns rows updated. */
  async function applyClock(tx: SQL, message: ClockMessage, stored: ClockAnchor[] | undefined) {
    const merged = mergeAnchors(stored ?? [], message.anchors);
    if (stored && merged.length === stored.length) return { merged, corrected: 0 };
    await tx.unsafe(
      `INSERT INTO ${t.clock} (device, boot, anchors) VALUES ($1, $2, $3::text::jsonb)
       ON CONFLICT (device, boot) DO UPDATE SET anchors = EXCLUDED.anchors, updated_at = now()`,
      [message.device, message.boot, JSON.stringify(merged)],
    );
    const full: ClockMessage = { ...message, anchors: merged };
    const rows = (await tx.unsafe(
      `SELECT seq, ts, tq, te_ms, mono_ms FROM ${t.readings}
        WHERE device = $1 AND boot = $2 AND tq <> 'ntp' AND mono_ms IS NOT NULL`,
      [message.device, message.boot],
    )) as Array<{
      seq: string | number;
      ts: Date;
      tq: ReadingRow["tq"];
      te_ms: string | number | null;
      mono_ms: number;
    }>;
    const seqs: string[] = [];
    const ts: string[] = [];
    const te: number[] = [];
    for (const r of rows) {
      const better = restamp(
        {
          ts: r.ts.toISOString(),
          tq: r.tq,
          // A row without a bound (an edge older than te_ms) cannot be compared: never re-stamped.
          te_ms: r.te_ms === null ? 0 : Number(r.te_ms),
          boot: message.boot,
          mono_ms: r.mono_ms,
        },
        full,
      );
      if (!better) continue;
      seqs.push(String(r.seq));
      ts.push(new Date(better.ts).toISOString());
      te.push(better.te_ms);
    }
    if (seqs.length > 0) {
      await tx.unsafe(
        `UPDATE ${t.readings} r SET ts = u.ts, tq = 'corrected', te_ms = u.te
           FROM unnest($2::bigint[], $3::timestamptz[], $4::bigint[]) AS u(seq, ts, te)
          WHERE r.device = $1 AND r.seq = u.seq`,
        [message.device, seqs, ts, te],
      );
    }
    return { merged, corrected: seqs.length };
  }

  return {
    async writeBatch(works) {
      const result: BatchResult = { inserted: 0, duplicates: 0, corrected: 0, deadLetters: 0 };
      const readings: ReadingRow[] = [];
      const clocks: ClockMessage[] = [];
      const dead: Array<Extract<Work, { kind: "dead" }>> = [];
      for (const w of works) {
        if (w.kind === "readings") readings.push(...w.rows);
        else if (w.kind === "clock") clocks.push(w.message);
        else if (w.kind === "dead") dead.push(w);
      }
      if (readings.length === 0 && clocks.length === 0 && dead.length === 0) return result;
      const keys = new Map<string, { device: string; boot: string; exclusive: boolean }>();
      for (const r of readings)
        if (correctable(r)) {
          const k = keyOf(r.device, r.boot!);
          if (!keys.has(k)) keys.set(k, { device: r.device, boot: r.boot!, exclusive: false });
        }
      for (const c of clocks)
        keys.set(keyOf(c.device, c.boot), { device: c.device, boot: c.boot, exclusive: true });

      await sql.begin(async (tx) => {
        await lock(tx, keys);
        const anchors = await anchorsOf(tx, [...keys.values()]);
        for (const c of clocks) {
          const k = keyOf(c.device, c.boot);
          const { merged, corrected } = await applyClock(tx, c, anchors.get(k));
          anchors.set(k, merged);
          result.corrected += corrected;
        }
        if (readings.length > 0) {
          const cols = {
            device: [] as string[],
            seq: [] as string[],
            stream: [] as string[],
            ts: [] as string[],
            tq: [] as string[],
            te: [] as Array<number | null>,
            boot: [] as Array<string | null>,
            mono: [] as Array<number | null>,
            values: [] as string[],
            anomaly: [] as boolean[],
            note: [] as Array<string | null>,
          };
          for (const r of readings) {
            let { tsMs, tq, teMs } = r;
            if (correctable(r)) {
              const stored = anchors.get(keyOf(r.device, r.boot!));
              const better =
                stored &&
                restamp(
                  {
                    ts: new Date(tsMs).toISOString(),
                    tq,
                    te_ms: teMs ?? 0,
                    boot: r.boot!,
                    mono_ms: r.monoMs!,
                  },
                  { v: 1, device: r.device, boot: r.boot!, anchors: stored },
                );
              if (better) {
                tsMs = Date.parse(better.ts);
                tq = better.tq;
                teMs = better.te_ms;
              }
            }
            cols.device.push(r.device);
            cols.seq.push(String(r.seq));
            cols.stream.push(r.stream);
            cols.ts.push(new Date(tsMs).toISOString());
            cols.tq.push(tq);
            cols.te.push(teMs);
            cols.boot.push(r.boot);
            cols.mono.push(r.monoMs);
            cols.values.push(r.values);
            cols.anomaly.push(r.anomaly);
            cols.note.push(r.timeNote);
          }
          const inserted = await tx.unsafe(
            // jsonb travels as text and is cast in SQL: Bun would JSON-encode a string bound to a
            // jsonb parameter again (a jsonb string scalar instead of the object).
            `INSERT INTO ${t.readings} (device, seq, stream, ts, tq, te_ms, boot, mono_ms, "values", anomaly, time_note)
             SELECT d, s, st, ts, tq, te, b, m, v::jsonb, a, n
               FROM unnest($1::text[], $2::bigint[], $3::text[], $4::timestamptz[], $5::text[], $6::bigint[],
                           $7::uuid[], $8::float8[], $9::text[], $10::bool[], $11::text[])
                    AS u(d, s, st, ts, tq, te, b, m, v, a, n)
             ON CONFLICT (device, seq) DO NOTHING`,
            [
              cols.device,
              cols.seq,
              cols.stream,
              cols.ts,
              cols.tq,
              cols.te,
              cols.boot,
              cols.mono,
              cols.values,
              cols.anomaly,
              cols.note,
            ],
          );
          result.inserted = inserted.count;
          result.duplicates = readings.length - inserted.count;
        }
        if (dead.length > 0) {
          await tx.unsafe(
            `INSERT INTO ${t.deadLetter} (topic, payload, kind, reason)
             SELECT d.topic, decode(d.payload, 'hex'), d.kind, d.reason
               FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS d(topic, payload, kind, reason)`,
            [
              dead.map((d) => d.topic),
              dead.map((d) => Buffer.from(d.payload).toString("hex")),
              dead.map((d) => d.dead),
              dead.map((d) => d.reason),
            ],
          );
          result.deadLetters = dead.length;
        }
      });
      return result;
    },
  };
}
