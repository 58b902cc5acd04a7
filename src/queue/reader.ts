/**
 * QueueReader: read-only access to a queue database another process (`fieldrelay run`) holds
 * open and writes. A WAL reader sees the last committed state and never blocks the writer.
 * Used by `fieldrelay queue stats | peek | export`.
 */
import { Database } from "bun:sqlite";
import { chownSync, existsSync, statSync } from "node:fs";
import type { Anchor, AnchorSource } from "../clock/types.ts";
import { QueueError } from "./errors.ts";
import { hasInflightRuns } from "./inflight.ts";
import { ROW_COLUMNS, type Row, rowToReading } from "./rows.ts";
import { SEQ_RESERVED_KEY, schemaVersion } from "./schema.ts";
import { readSeqFile } from "./seq-file.ts";
import type { QueuedReading } from "./types.ts";

export interface QueueFileStats {
  path: string;
  schemaVersion: number;
  /**
   * False when the file exists but its schema was never committed (the service crashed in its
   * first moments, before its first transaction): an empty queue, not an error.
   */
  initialised: boolean;
  rows: number;
  bytes: number;
  byPriority: Record<number, { rows: number; bytes: number }>;
  /** Lowest seq on disk; undefined when empty. */
  oldestSeq: number | undefined;
  /** The first seq a restart would hand out (the running writer hands out seqs below it). */
  nextSeq: number;
  inflight: number;
}

export interface StoredReading extends QueuedReading {
  inflight: boolean;
}

export interface QueueReader {
  stats(): QueueFileStats;
  /** The next `n` readings in send order: inflight first, then priority DESC, seq ASC. */
  peek(n: number): StoredReading[];
  /** Every stored reading in seq order, streamed. */
  export(): IterableIterator<StoredReading>;
  /** The clock's anchors of one boot, as stored (`fieldrelay clock`). */
  anchorsFor(bootId: string): Anchor[];
  close(): void;
}

export function openQueueReader(path: string): QueueReader {
  if (!existsSync(path)) {
    throw new QueueError(
      "db-missing",
      `queue database ${path} does not exist — check queue.path in the config or pass --db PATH`,
      { context: { path } },
    );
  }
  let db: Database;
  const sidecars = [`${path}-wal`, `${path}-shm`].filter((f) => !existsSync(f));
  try {
    db = new Database(path, { readonly: true, strict: true });
    db.exec("PRAGMA busy_timeout = 5000");
    db.query("SELECT count(*) FROM sqlite_master").get();
    // A WAL reader creates -wal/-shm when no writer is running. Run as root (the usual way to
    // call the CLI) they would be root's, and the service user could no longer open the queue:
    // give them to the database's owner.
    if (process.getuid?.() === 0) {
      const owner = statSync(path);
      for (const f of sidecars) if (existsSync(f)) chownSync(f, owner.uid, owner.gid);
    }
  } catch (error) {
    throw new QueueError("open-failed", `cannot read queue database ${path}: ${(error as Error).message}`, {
      context: { path },
      cause: error,
    });
  }
  let initialised: boolean;
  try {
    initialised = db.query("SELECT 1 FROM sqlite_master WHERE name = 'readings_v'").get() !== null;
  } catch (error) {
    db.close(false);
    throw new QueueError("open-failed", `cannot read queue database ${path}: ${(error as Error).message}`, {
      context: { path },
      cause: error,
    });
  }
  if (!initialised) return emptyReader(path, db);
  // A row is inflight when flagged, or inside a run of inflight_runs (inflight.ts): the `inflight`
  // column of the view is widened to both, so every query below keeps meaning "handed to the broker".
  const runs = hasInflightRuns(db);
  const rowsView = runs
    ? `(SELECT v.seq, v.stream, v.priority, v.qos, v.boot_id, v.mono_ns, v.wall_ms, v.tq, v.vals, v.anomaly, v.bytes,
          (v.inflight = 1 OR EXISTS (SELECT 1 FROM inflight_runs i WHERE i.lo <= v.seq AND v.seq <= i.hi)) AS inflight
        FROM readings_v v)`
    : "readings_v";
  const toStored = (row: Row): StoredReading => ({
    ...rowToReading(row),
    inflight: row.inflight === 1,
  });
  return {
    anchorsFor(bootId) {
      const rows = db
        .query(
          "SELECT CAST(mono_ns AS TEXT) AS mono_ns, wall_ms, source, uncertainty_ms, ppm FROM anchors WHERE boot_id = ?",
        )
        .all(bootId) as Array<{
        mono_ns: string;
        wall_ms: number;
        source: AnchorSource;
        uncertainty_ms: number;
        ppm: number | null;
      }>;
      return rows.map((r) => ({
        bootId,
        monoNs: BigInt(r.mono_ns),
        wallMs: r.wall_ms,
        source: r.source,
        uncertaintyMs: r.uncertainty_ms,
        ...(r.ppm === null ? {} : { ppm: r.ppm }),
      }));
    },
    stats() {
      const byPriority: QueueFileStats["byPriority"] = {};
      let rows = 0;
      let bytes = 0;
      for (const r of db
        .query("SELECT priority, count(*) AS n, coalesce(sum(bytes), 0) AS b FROM readings GROUP BY priority")
        .all() as Array<{ priority: number; n: number; b: number }>) {
        byPriority[r.priority] = { rows: r.n, bytes: r.b };
        rows += r.n;
        bytes += r.b;
      }
      const ends = db.query("SELECT min(seq) AS lo, max(seq) AS hi FROM readings").get() as {
        lo: number | null;
        hi: number | null;
      };
      const meta = db.query("SELECT value FROM meta WHERE key = ?").get(SEQ_RESERVED_KEY) as {
        value: number;
      } | null;
      const inflight = (
        db.query(`SELECT count(*) AS n FROM ${rowsView} WHERE inflight = 1`).get() as { n: number }
      ).n;
      return {
        path,
        schemaVersion: schemaVersion(db),
        initialised: true,
        rows,
        bytes,
        byPriority,
        oldestSeq: ends.lo ?? undefined,
        nextSeq: Math.max(meta?.value ?? 0, readSeqFile(path), ends.hi ?? 0) + 1,
        inflight,
      };
    },
    peek(n) {
      const inflight = db
        .query(`SELECT ${ROW_COLUMNS} FROM ${rowsView} WHERE inflight = 1 ORDER BY seq LIMIT ?`)
        .all(n) as Row[];
      const rest = db
        .query(
          `SELECT ${ROW_COLUMNS} FROM ${rowsView} WHERE inflight = 0 ORDER BY priority DESC, seq ASC LIMIT ?`,
        )
        .all(Math.max(0, n - inflight.length)) as Row[];
      return [...inflight, ...rest].map(toStored);
    },
    *export() {
      for (const row of db.query(`SELECT ${ROW_COLUMNS} FROM ${rowsView} ORDER BY seq`).iterate())
        yield toStored(row as Row);
    },
    close() {
      db.close(false);
    },
  };
}

/** A queue file with no schema yet: no readings, no anchors; the next seq from the side file. */
function emptyReader(path: string, db: Database): QueueReader {
  return {
    anchorsFor: () => [],
    stats: () => ({
      path,
      schemaVersion: 0,
      initialised: false,
      rows: 0,
      bytes: 0,
      byPriority: {},
      oldestSeq: undefined,
      nextSeq: readSeqFile(path) + 1,
      inflight: 0,
    }),
    peek: () => [],
    *export() {},
    close() {
      db.close(false);
    },
  };
}
