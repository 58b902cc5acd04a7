/**
 * SqliteQueue: the store-and-forward queue on bun:sqlite (WAL) with a write-behind buffer. The
 * on-disk format and the life of a reading are documented in schema.ts; the eviction choice in
 * eviction.ts; the commit decision in batching.ts. This module is the I/O around them.
 *
 * Bookkeeping kept in RAM (all O(1) per reading, none proportional to the backlog on disk):
 * - `pending`: readings captured but not committed, in seq order (Map keeps insertion order).
 * - `classes`: rows and payload bytes per priority, over disk and RAM, minus rows whose delete is
 *   waiting for the next commit.
 * - `inflight`: seqs handed to the broker and not yet acked (loaded from disk at start).
 * - `deletes` / `flags`: seqs to delete and seqs whose inflight flag to set in the next commit.
 * - `scanFrom`: per priority, a seq at or below which every row on disk is inflight or waiting for
 *   its delete, so next() starts its disk scan there instead of re-reading a drained prefix (a
 *   backlog drains at broker speed, and deletes wait up to commit_interval: rescanning them on
 *   every turn made draining quadratic).
 * - `handed`: priority and size of disk rows next() returned, so markInflight()/ack() need no
 *   lookup query per row; dropped on ack or eviction.
 * - `ahead`: per priority, the next rows on disk read ahead in one query (a query per publish turn
 *   cost more than the MQTT send). Only a commit changes which rows are on disk, so a commit
 *   drops it.
 */
import type { Database, SQLiteError } from "bun:sqlite";
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { realScheduler, type Scheduler } from "../clock/scheduler.ts";
import type { Anchor, AnchorSource, AnchorStore } from "../clock/types.ts";
import { CLOCK_MONOTONIC, clockGettimeNs, statvfs } from "../hal/libc/index.ts";
import type { Logger } from "../log/index.ts";
import { commitDecision } from "./batching.ts";
import { countDeadLetters, ensureDeadLetterTable, insertDeadLetters } from "./dead-letter.ts"; // #12 dead letters
import { QueueError } from "./errors.ts";
import { chooseEvictions, type PriorityClass } from "./eviction.ts";
import { checkDataDir, isSqliteError, openOrQuarantine, readOnlyError } from "./open.ts";
import { ROW_COLUMNS, type Row, rowToReading } from "./rows.ts";
import { migrate, payloadBytes, SEQ_RESERVED_KEY } from "./schema.ts";
import { readSeqFile, writeSeqFile } from "./seq-file.ts";
import type { CaptureResult, Queue, QueuedReading, QueueStats, Reading } from "./types.ts";

/** Rows of one priority read ahead from disk in seq order; rows[0, at) are drained (inflight or deleted). */
interface ReadAhead {
  rows: Row[];
  at: number;
  /** Highest seq read so far: the next read starts after it. */
  after: number;
  /** The last read came back short: nothing more on disk until the next commit. */
  exhausted: boolean;
}

const READ_AHEAD = 256;

export interface QueueOptions {
  path: string;
  log: Logger;
  durability?: "full" | "normal";
  commitIntervalMs?: number;
  commitMaxRows?: number;
  maxRows?: number;
  maxBytes?: number;
  minFreeDiskMb?: number;
  protectedPriority?: number;
  /** /proc/sys/kernel/random/boot_id of this boot (read from /proc when omitted). */
  bootId?: string;
  /** CLOCK_MONOTONIC in ms. */
  monoMs?: () => number;
  /** Free bytes available to us on the filesystem holding dir. */
  freeDiskBytes?: (dir: string) => number;
  scheduler?: Scheduler;
  /** Seqs reserved per durable write (a crash skips at most this many). */
  seqBlock?: number;
  /** Readings held in RAM while commits fail (e.g. disk full); beyond it the lowest priority goes. */
  maxPendingInRam?: number;
  /** PRAGMA max_page_count: a hard size cap (tests simulate a full disk with it). */
  maxPageCount?: number;
}

interface Pending {
  seq: number;
  reading: Reading;
  vals: string;
  bytes: number;
  capturedMonoMs: number;
  inflight: boolean;
  waiters?: Array<{ resolve: () => void; reject: (e: Error) => void }>;
}

const MiB = 1024 * 1024;

/**
 * CLOCK_MONOTONIC in ms, read through performance.now() (also monotonic, and ~10× cheaper than a
 * clock_gettime FFI call on every capture) shifted once onto CLOCK_MONOTONIC's origin.
 */
function monotonicMs(): () => number {
  const offset = Number(clockGettimeNs(CLOCK_MONOTONIC)) / 1e6 - performance.now();
  return () => offset + performance.now();
}

function defaultBootId(): string {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return "unknown";
  }
}

/**
 * Open (creating when absent) the queue database at options.path. Fails with a QueueError when
 * the data directory is missing or read-only; a corrupt file is moved aside, never deleted.
 */
export async function openQueue(options: QueueOptions): Promise<SqliteQueue> {
  return SqliteQueue.open(options);
}

export class SqliteQueue implements Queue, AnchorStore {
  private readonly pending = new Map<number, Pending>();
  private readonly classes = new Map<number, { rows: number; bytes: number }>();
  private totalRows = 0;
  private totalBytes = 0;
  private readonly inflight = new Set<number>();
  private readonly deletes = new Set<number>();
  private readonly flags = new Set<number>();
  private readonly scanFrom = new Map<number, number>();
  private readonly handed = new Map<number, { priority: number; bytes: number }>();
  private readonly ahead = new Map<number, ReadAhead>();
  private readonly listeners = new Set<() => void>();
  /** boot_id text → boots.id, registered at the first capture of each boot. */
  private readonly boots = new Map<string, number>();
  private oldestOpMonoMs: number | undefined;
  private timer: unknown;
  private timerDueMonoMs: number | undefined;
  private notifyQueued = false;
  private closed = false;
  private seqNext: number;
  private seqReserved: number;
  private counters = { captured: 0, committed: 0, commits: 0, delivered: 0, deliveredBeforeCommit: 0 };
  private readonly evictedByPriority: Record<number, number> = {};
  private readonly refusedByPriority: Record<number, number> = {};
  private lastCommitMonoMs: number | undefined;
  private lastError: string | undefined;
  private diskLow = false;
  /** Oldest unsent row of this boot on disk: undefined = unknown, null = none. */
  private oldestOnDisk: { seq: number; ns: bigint } | null | undefined;
  private readonly cfg: Required<
    Omit<QueueOptions, "log" | "path" | "maxPageCount" | "bootId" | "scheduler" | "monoMs" | "freeDiskBytes">
  >;
  private readonly monoMs: () => number;
  private readonly freeDiskBytes: (dir: string) => number;
  private readonly scheduler: Scheduler;
  private readonly log: Logger;
  readonly path: string;
  readonly bootId: string;

  private constructor(
    private readonly db: Database,
    options: QueueOptions,
    seqFloor: number,
  ) {
    this.path = options.path;
    this.log = options.log;
    this.bootId = options.bootId ?? defaultBootId();
    this.monoMs = options.monoMs ?? monotonicMs();
    this.freeDiskBytes = options.freeDiskBytes ?? ((dir) => statvfs(dir).availableBytes);
    this.scheduler = options.scheduler ?? realScheduler;
    this.cfg = {
      durability: options.durability ?? "full",
      commitIntervalMs: options.commitIntervalMs ?? 1000,
      commitMaxRows: options.commitMaxRows ?? 1000,
      maxRows: options.maxRows ?? 1_000_000,
      maxBytes: options.maxBytes ?? 512 * MiB,
      minFreeDiskMb: options.minFreeDiskMb ?? 64,
      protectedPriority: options.protectedPriority ?? 9,
      seqBlock: options.seqBlock ?? 4096,
      maxPendingInRam: options.maxPendingInRam ?? Math.max(10_000, 10 * (options.commitMaxRows ?? 1000)),
    };
    this.seqNext = seqFloor + 1;
    this.seqReserved = seqFloor;
  }

  static async open(options: QueueOptions): Promise<SqliteQueue> {
    checkDataDir(options.path);
    const { db, recoveredSeq } = openOrQuarantine(options.path, options.log, () => new Date());
    try {
      db.exec("PRAGMA busy_timeout = 5000");
      db.exec("PRAGMA page_size = 1024"); // only takes effect on a new, empty file (see schema.ts)
      const mode = db.query("PRAGMA journal_mode = WAL").get() as { journal_mode: string };
      if (mode.journal_mode !== "wal") throw new Error(`journal_mode is ${mode.journal_mode}, not wal`);
      db.exec(`PRAGMA synchronous = ${options.durability === "normal" ? "NORMAL" : "FULL"}`);
      // Checkpoint every 8 MiB of WAL (8192 pages of 1 KiB): fewer, larger checkpoints, since each
      // page is copied once per checkpoint however often it was rewritten; keep the WAL file at
      // most 16 MiB after one.
      db.exec("PRAGMA wal_autocheckpoint = 8192");
      db.exec("PRAGMA journal_size_limit = 16777216");
      if (options.maxPageCount !== undefined) db.exec(`PRAGMA max_page_count = ${options.maxPageCount}`);
      migrate(db);
      ensureDeadLetterTable(db); // #12 dead letters: own table, not a migration (see dead-letter.ts)
    } catch (error) {
      db.close(false);
      if (isSqliteError(error, "SQLITE_READONLY") || isSqliteError(error, "SQLITE_CANTOPEN"))
        throw readOnlyError(options.path, error);
      throw new QueueError("open-failed", `cannot open queue database ${options.path}: ${String(error)}`, {
        context: { path: options.path },
        cause: error,
      });
    }
    const meta = db.query("SELECT value FROM meta WHERE key = ?").get(SEQ_RESERVED_KEY) as {
      value: number;
    } | null;
    const maxSeq = (db.query("SELECT max(seq) AS s FROM readings").get() as { s: number | null }).s ?? 0;
    const floor = Math.max(recoveredSeq, readSeqFile(options.path), meta?.value ?? 0, maxSeq);
    const queue = new SqliteQueue(db, options, floor);
    queue.load();
    try {
      queue.reserve();
    } catch (error) {
      db.close(false);
      if (isSqliteError(error, "SQLITE_READONLY") || (error as NodeJS.ErrnoException).code === "EACCES")
        throw readOnlyError(options.path, error);
      if ((error as NodeJS.ErrnoException).code === "EROFS") throw readOnlyError(options.path, error);
      throw error;
    }
    return queue;
  }

  private load(): void {
    for (const r of this.db
      .query("SELECT priority, count(*) AS n, sum(bytes) AS b FROM readings GROUP BY priority")
      .all() as Array<{ priority: number; n: number; b: number }>) {
      this.addClass(r.priority, r.n, r.b);
    }
    for (const r of this.db.query("SELECT id, boot_id FROM boots").all() as Array<{
      id: number;
      boot_id: string;
    }>)
      this.boots.set(r.boot_id, r.id);
    for (const r of this.db.query("SELECT seq FROM readings WHERE inflight = 1").all() as Array<{
      seq: number;
    }>)
      this.inflight.add(r.seq);
    this.log.info(
      { path: this.path, rows: this.totals().rows, inflight: this.inflight.size, seqNext: this.seqNext },
      "queue opened",
    );
  }

  /** Make seqs up to seqNext + seqBlock durable (side file and meta) before handing any out. */
  private reserve(): void {
    const reserved = this.seqNext - 1 + this.cfg.seqBlock;
    writeSeqFile(this.path, reserved);
    this.db
      .query(
        "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      )
      .run(SEQ_RESERVED_KEY, reserved);
    this.seqReserved = reserved;
  }

  private registerBoot(bootId: string): void {
    this.db.query("INSERT OR IGNORE INTO boots(boot_id) VALUES (?)").run(bootId);
    const row = this.db.query("SELECT id FROM boots WHERE boot_id = ?").get(bootId) as { id: number };
    this.boots.set(bootId, row.id);
  }

  // ---- Queue ----

  capture(reading: Reading): CaptureResult {
    if (this.closed) throw new QueueError("closed", `queue ${this.path} is closed`);
    const vals = JSON.stringify(reading.values);
    const bytes = payloadBytes(reading.stream, reading.bootId, reading.tq, vals);
    const refusal = this.makeRoom(1, bytes, reading.priority);
    if (refusal !== undefined) {
      this.refusedByPriority[reading.priority] = (this.refusedByPriority[reading.priority] ?? 0) + 1;
      return { ok: false, reason: "refused", detail: refusal };
    }
    if (this.seqNext > this.seqReserved) this.reserve();
    if (!this.boots.has(reading.bootId)) {
      try {
        this.registerBoot(reading.bootId);
      } catch (error) {
        this.lastError = String(error);
        this.log.error({ err: error, bootId: reading.bootId }, "queue cannot record a new boot id");
        this.refusedByPriority[reading.priority] = (this.refusedByPriority[reading.priority] ?? 0) + 1;
        return {
          ok: false,
          reason: "refused",
          detail: `cannot record boot ${reading.bootId}: ${String(error)}`,
        };
      }
    }
    const seq = this.seqNext++;
    const now = this.monoMs();
    this.pending.set(seq, { seq, reading, vals, bytes, capturedMonoMs: now, inflight: false });
    this.addClass(reading.priority, 1, bytes);
    this.counters.captured++;
    if (this.cfg.commitIntervalMs === 0) this.commit();
    else this.schedule();
    this.notify();
    return { ok: true, seq };
  }

  whenCaptured(seqs: number[]): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const seq of seqs) {
      const p = this.pending.get(seq);
      if (!p) continue; // committed, acked or evicted-and-reported: nothing to wait for
      waits.push(
        new Promise<void>((resolve, reject) => {
          p.waiters ??= [];
          p.waiters.push({ resolve, reject });
        }),
      );
    }
    return Promise.all(waits).then(() => undefined);
  }

  next(limit: number, exclude: ReadonlySet<number>): QueuedReading[] {
    const out: QueuedReading[] = [];
    if (limit <= 0) return out;
    const seen = new Set<number>();
    // Usually every inflight row is the caller's own (excluded): filter before sorting.
    const resend = [...this.inflight].filter((seq) => !exclude.has(seq)).sort((a, b) => a - b);
    for (const seq of resend) {
      if (out.length >= limit) return out;
      const r = this.get(seq);
      if (r) {
        out.push(r);
        seen.add(seq);
      }
    }
    const hidden = (seq: number) => exclude.has(seq) || seen.has(seq) || this.deletes.has(seq);
    const drained = (seq: number) => this.inflight.has(seq) || this.deletes.has(seq);
    const priorities = [...this.classes.keys()].filter((p) => (this.classes.get(p)?.rows ?? 0) > 0);
    priorities.sort((a, b) => b - a);
    for (const priority of priorities) {
      const ram = [...this.pending.values()].filter((p) => p.reading.priority === priority && !hidden(p.seq));
      const ahead = this.readAheadOf(priority);
      let ri = 0;
      let i = ahead.at;
      let prefix = true; // still inside the run of drained rows at the front of this priority
      while (out.length < limit) {
        if (i >= ahead.rows.length && !ahead.exhausted) {
          i -= this.refill(priority, ahead);
          continue;
        }
        while (i < ahead.rows.length && hidden((ahead.rows[i] as Row).seq)) {
          const seq = (ahead.rows[i] as Row).seq;
          if (prefix && drained(seq)) {
            ahead.at = i + 1;
            this.scanFrom.set(priority, seq);
          } else prefix = false;
          i++;
        }
        if (i >= ahead.rows.length && !ahead.exhausted) continue;
        const dbRow = ahead.rows[i];
        const ramRow = ram[ri];
        if (!dbRow && !ramRow) break;
        if (dbRow && (!ramRow || dbRow.seq < ramRow.seq)) {
          out.push(rowToReading(dbRow));
          this.handed.set(dbRow.seq, { priority: dbRow.priority, bytes: dbRow.bytes });
          prefix = false;
          i++;
        } else if (ramRow) {
          out.push(this.fromPending(ramRow));
          ri++;
        }
      }
      if (out.length >= limit) break;
    }
    return out;
  }

  private readAheadOf(priority: number): ReadAhead {
    let ahead = this.ahead.get(priority);
    if (!ahead) {
      ahead = { rows: [], at: 0, after: this.scanFrom.get(priority) ?? 0, exhausted: false };
      this.ahead.set(priority, ahead);
    }
    return ahead;
  }

  /** Drop the drained prefix and read the next READ_AHEAD rows; returns how far indexes moved. */
  private refill(priority: number, ahead: ReadAhead): number {
    const dropped = ahead.at;
    const fetched = this.db
      .query(`SELECT ${ROW_COLUMNS} FROM readings_v WHERE priority = ? AND seq > ? ORDER BY seq LIMIT ?`)
      .all(priority, ahead.after, READ_AHEAD) as Row[];
    ahead.rows = ahead.rows.slice(dropped).concat(fetched);
    ahead.at = 0;
    ahead.exhausted = fetched.length < READ_AHEAD;
    if (fetched.length > 0) ahead.after = (fetched[fetched.length - 1] as Row).seq;
    return dropped;
  }

  markInflight(seqs: number[]): void {
    for (const seq of seqs) {
      if (this.deletes.has(seq)) continue;
      const p = this.pending.get(seq);
      if (p) {
        p.inflight = true;
        this.inflight.add(seq);
      } else if (!this.inflight.has(seq) && (this.handed.has(seq) || this.lookup(seq))) {
        this.inflight.add(seq);
        this.flags.add(seq);
        this.touchOldest(seq);
        this.oldestOpMonoMs ??= this.monoMs();
      }
    }
    this.schedule();
  }

  ack(seqs: number[]): void {
    for (const seq of seqs) {
      this.inflight.delete(seq);
      const p = this.pending.get(seq);
      if (p) {
        this.pending.delete(seq);
        this.addClass(p.reading.priority, -1, -p.bytes);
        this.counters.delivered++;
        this.counters.deliveredBeforeCommit++;
        for (const w of p.waiters ?? []) w.resolve();
        continue;
      }
      if (this.deletes.has(seq)) continue;
      const row = this.handed.get(seq) ?? this.lookup(seq);
      this.handed.delete(seq);
      if (!row) continue; // unknown or already deleted: acks are idempotent
      this.flags.delete(seq);
      this.deletes.add(seq);
      this.touchOldest(seq);
      this.addClass(row.priority, -1, -row.bytes);
      this.counters.delivered++;
      this.oldestOpMonoMs ??= this.monoMs();
    }
    this.schedule();
  }

  onAvailable(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // ---- #12 dead letters (hostile helper; storage and format in dead-letter.ts) ----
  private deadLetterCount: number | undefined;
  private lastDeadLetterReason: string | undefined;

  /** Move refused readings aside: stored as dead letters first, then dropped like an ack (not counted as delivered). */
  deadLetter(seqs: number[], reason: string): void {
    const readings = seqs.map((s) => this.get(s)).filter((r): r is QueuedReading => r !== undefined);
    if (readings.length === 0) return;
    insertDeadLetters(this.db, readings, reason, Date.now());
    const { delivered, deliveredBeforeCommit } = this.counters;
    this.ack(readings.map((r) => r.seq));
    Object.assign(this.counters, { delivered, deliveredBeforeCommit });
    this.deadLetterCount = countDeadLetters(this.db);
    this.lastDeadLetterReason = reason;
  }
  // ---- end #12 dead letters ----

  async flush(): Promise<void> {
    this.commit();
  }

  stats(): QueueStats {
    const totals = this.totals();
    this.deadLetterCount ??= countDeadLetters(this.db); // #12 dead letters
    return {
      ...this.counters,
      evictedByPriority: { ...this.evictedByPriority },
      refusedByPriority: { ...this.refusedByPriority },
      rows: totals.rows,
      bytes: totals.bytes,
      pendingInRam: this.pending.size,
      inflight: this.inflight.size,
      oldestUnsentAgeS: this.oldestUnsentAgeS(),
      refusing: this.refusing(totals),
      lastCommitMonoMs: this.lastCommitMonoMs,
      lastError: this.lastError,
      seqNext: this.seqNext,
      deadLetters: this.deadLetterCount, // #12 dead letters
      lastDeadLetterReason: this.lastDeadLetterReason, // #12 dead letters
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.commit();
    this.clearTimer();
    this.closed = true;
    for (const p of this.pending.values()) {
      for (const w of p.waiters ?? [])
        w.reject(new QueueError("closed", `queue ${this.path} closed before seq ${p.seq} was committed`));
    }
    if (this.pending.size > 0)
      this.log.error(
        { lost: this.pending.size, lastError: this.lastError },
        "queue closed with uncommitted readings",
      );
    this.db.close(false);
  }

  // ---- AnchorStore ----

  saveAnchor(anchor: Anchor): void {
    this.db
      .query("INSERT INTO anchors(boot_id, mono_ns, wall_ms, source, uncertainty_ms) VALUES (?, ?, ?, ?, ?)")
      .run(anchor.bootId, anchor.monoNs, anchor.wallMs, anchor.source, anchor.uncertaintyMs);
  }

  anchorsFor(bootId: string): Anchor[] {
    const rows = this.db
      .query(
        "SELECT boot_id, CAST(mono_ns AS TEXT) AS mono_ns, wall_ms, source, uncertainty_ms FROM anchors WHERE boot_id = ?",
      )
      .all(bootId) as Array<{
      boot_id: string;
      mono_ns: string;
      wall_ms: number;
      source: AnchorSource;
      uncertainty_ms: number;
    }>;
    return rows.map((r) => ({
      bootId: r.boot_id,
      monoNs: BigInt(r.mono_ns),
      wallMs: r.wall_ms,
      source: r.source,
      uncertaintyMs: r.uncertainty_ms,
    }));
  }

  // ---- internals ----

  private totals(): { rows: number; bytes: number } {
    return { rows: this.totalRows, bytes: this.totalBytes };
  }

  private addClass(priority: number, rows: number, bytes: number): void {
    this.totalRows += rows;
    this.totalBytes += bytes;
    const c = this.classes.get(priority) ?? { rows: 0, bytes: 0 };
    c.rows += rows;
    c.bytes += bytes;
    if (c.rows <= 0) this.classes.delete(priority);
    else this.classes.set(priority, c);
  }

  private evictableRows(): number {
    let n = 0;
    for (const [p, c] of this.classes) if (p < this.cfg.protectedPriority) n += c.rows;
    return n;
  }

  private refusing(totals: { rows: number; bytes: number }): boolean {
    const full = totals.rows >= this.cfg.maxRows || totals.bytes >= this.cfg.maxBytes || this.diskLow;
    return full && this.evictableRows() === 0 && totals.rows > 0;
  }

  private oldestUnsentAgeS(): number {
    let oldestNs: bigint | undefined;
    for (const p of this.pending.values()) {
      if (p.reading.bootId === this.bootId && !p.inflight) {
        oldestNs = p.reading.monoNs;
        break; // in seq order, and within a boot mono_ns grows with seq
      }
    }
    const disk = this.oldestUnsentOnDisk();
    if (disk && (oldestNs === undefined || disk.ns < oldestNs)) oldestNs = disk.ns;
    if (oldestNs === undefined) return 0;
    return Math.max(0, (this.monoMs() - Number(oldestNs / 1_000_000n)) / 1000);
  }

  private oldestUnsentOnDisk(): { seq: number; ns: bigint } | null {
    if (this.oldestOnDisk !== undefined) return this.oldestOnDisk;
    this.oldestOnDisk = null;
    const stmt = this.db.query(
      "SELECT seq, CAST(mono_ns AS TEXT) AS mono_ns FROM readings WHERE boot = ? AND inflight = 0 AND seq > ? ORDER BY seq LIMIT 256",
    );
    const boot = this.boots.get(this.bootId);
    if (boot === undefined) return null;
    let after = 0;
    for (;;) {
      const rows = stmt.all(boot, after) as Array<{ seq: number; mono_ns: string }>;
      if (rows.length === 0) break;
      const hit = rows.find((r) => !this.deletes.has(r.seq) && !this.inflight.has(r.seq));
      if (hit) {
        this.oldestOnDisk = { seq: hit.seq, ns: BigInt(hit.mono_ns) };
        break;
      }
      after = (rows[rows.length - 1] as { seq: number }).seq;
    }
    return this.oldestOnDisk;
  }

  /** Forget the cached oldest unsent row when `seq` (or, with no seq, anything) may change it. */
  private touchOldest(seq?: number): void {
    if (seq === undefined || this.oldestOnDisk?.seq === seq) this.oldestOnDisk = undefined;
  }

  private lookup(seq: number): { priority: number; bytes: number } | undefined {
    return (
      (this.db.query("SELECT priority, bytes FROM readings WHERE seq = ?").get(seq) as {
        priority: number;
        bytes: number;
      } | null) ?? undefined
    );
  }

  private get(seq: number): QueuedReading | undefined {
    const p = this.pending.get(seq);
    if (p) return this.fromPending(p);
    if (this.deletes.has(seq)) return undefined;
    const row = this.db.query(`SELECT ${ROW_COLUMNS} FROM readings_v WHERE seq = ?`).get(seq) as Row | null;
    return row ? rowToReading(row) : undefined;
  }

  private fromPending(p: Pending): QueuedReading {
    return { ...p.reading, seq: p.seq };
  }

  private notify(): void {
    if (this.notifyQueued || this.listeners.size === 0) return;
    this.notifyQueued = true;
    queueMicrotask(() => {
      this.notifyQueued = false;
      for (const l of this.listeners) l();
    });
  }

  /**
   * Bring rows and bytes within budget before adding one reading of `priority`. Returns the
   * refusal detail, or undefined when the reading may be added.
   */
  private makeRoom(
    rows: number,
    bytes: number,
    priority: number | undefined,
    extraBytes = 0,
  ): string | undefined {
    for (let round = 0; round < 8; round++) {
      const t = this.totals();
      const need = {
        rows: t.rows + rows - this.cfg.maxRows,
        bytes: Math.max(t.bytes + bytes - this.cfg.maxBytes, extraBytes),
      };
      const classes: PriorityClass[] = [...this.classes].map(([p, c]) => ({ priority: p, ...c }));
      const choice = chooseEvictions(
        classes,
        need,
        this.cfg.protectedPriority,
        priority === undefined ? undefined : { priority },
      );
      if (!choice.accept) return choice.detail;
      if (choice.evict.length === 0) return undefined;
      const freed = this.evict(
        choice.evict,
        need.rows > 0 ? "max_rows" : need.bytes > 0 ? "max_bytes" : "disk",
      );
      if (choice.shortfall) return undefined;
      extraBytes = Math.max(0, extraBytes - freed);
    }
    return undefined;
  }

  /** Evict the oldest `rows` of each priority: from disk first (older), then from RAM. */
  private evict(plan: Array<{ priority: number; rows: number }>, reason: string): number {
    const counts: Record<number, number> = {};
    let freed = 0;
    const stmt = this.db.query(
      "SELECT seq, bytes FROM readings WHERE priority = ? AND seq > ? ORDER BY seq LIMIT ?",
    );
    for (const { priority, rows } of plan) {
      let left = rows;
      let after = 0;
      while (left > 0) {
        const batch = stmt.all(priority, after, left + this.deletes.size) as Array<{
          seq: number;
          bytes: number;
        }>;
        if (batch.length === 0) break;
        for (const r of batch) {
          after = r.seq;
          if (left === 0 || this.deletes.has(r.seq)) continue;
          this.deletes.add(r.seq);
          this.touchOldest(r.seq);
          this.flags.delete(r.seq);
          this.inflight.delete(r.seq);
          this.handed.delete(r.seq);
          this.addClass(priority, -1, -r.bytes);
          freed += r.bytes;
          left--;
        }
      }
      const fromRam = this.evictPending(
        priority,
        left,
        (seq) => `seq ${seq} was evicted (queue over budget) before its commit`,
      );
      left -= fromRam.rows;
      freed += fromRam.bytes;
      const n = rows - left;
      if (n > 0) {
        counts[priority] = n;
        this.evictedByPriority[priority] = (this.evictedByPriority[priority] ?? 0) + n;
      }
    }
    if (this.deletes.size > 0) this.oldestOpMonoMs ??= this.monoMs();
    this.log.warn(
      { evictedByPriority: counts, reason, freedBytes: freed },
      "queue over budget: evicted readings",
    );
    return freed;
  }

  private schedule(): void {
    if (this.closed) return;
    // Fast path for capture(): a timer is already armed and the batch is not full.
    if (
      this.timer !== undefined &&
      this.lastError === undefined &&
      this.pending.size < this.cfg.commitMaxRows &&
      this.pending.size > 0
    )
      return;
    const decision = commitDecision(
      {
        pendingRows: this.pending.size,
        oldestRowMonoMs: this.pending.values().next().value?.capturedMonoMs,
        pendingOps: this.deletes.size + this.flags.size,
        oldestOpMonoMs: this.oldestOpMonoMs,
      },
      this.monoMs(),
      this.lastError === undefined ? this.cfg.commitIntervalMs : Math.max(this.cfg.commitIntervalMs, 1000),
      this.cfg.commitMaxRows,
    );
    if (decision.kind === "idle") {
      this.clearTimer();
      return;
    }
    if (decision.kind === "now" && this.lastError === undefined) {
      this.commit();
      return;
    }
    const ms = decision.kind === "wait" ? decision.ms : 1000;
    const due = this.monoMs() + ms;
    if (this.timer !== undefined && this.timerDueMonoMs !== undefined && this.timerDueMonoMs <= due) return;
    this.clearTimer();
    this.timerDueMonoMs = due;
    this.timer = this.scheduler.setTimeout(() => {
      this.timer = undefined;
      this.timerDueMonoMs = undefined;
      this.commit();
    }, ms);
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.scheduler.clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDueMonoMs = undefined;
  }

  private readonly insertSql =
    "INSERT INTO readings(seq, stream, priority, qos, boot, mono_ns, wall_ms, tq, vals, anomaly, bytes, inflight) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

  private runTransaction(batch: Pending[]): void {
    const insert = this.db.query(this.insertSql);
    const del = this.db.query("DELETE FROM readings WHERE seq = ?");
    const flag = this.db.query("UPDATE readings SET inflight = 1 WHERE seq = ?");
    this.db.transaction(() => {
      for (const d of this.deletes) del.run(d);
      for (const f of this.flags) flag.run(f);
      for (const p of batch) {
        const r = p.reading;
        insert.run(
          p.seq,
          r.stream,
          r.priority,
          r.qos,
          this.boots.get(r.bootId) as number,
          r.monoNs,
          r.wallMs,
          r.tq,
          p.vals,
          r.anomaly ? 1 : 0,
          p.bytes,
          p.inflight ? 1 : 0,
        );
      }
    })();
  }

  /** Commit everything pending in ONE transaction; on SQLITE_FULL evict and retry once, then hold. */
  private commit(): void {
    if (this.closed) return;
    this.clearTimer();
    if (this.pending.size === 0 && this.deletes.size === 0 && this.flags.size === 0) return;
    this.checkDisk();
    let batch = [...this.pending.values()];
    try {
      try {
        this.runTransaction(batch);
      } catch (error) {
        if (!isSqliteError(error, "SQLITE_FULL")) throw error;
        const need = batch.reduce((n, p) => n + p.bytes, 0);
        this.log.warn(
          { path: this.path, batchRows: batch.length },
          "queue disk full on commit: evicting and retrying",
        );
        this.makeRoom(0, 0, undefined, Math.max(need, 64 * 1024));
        batch = [...this.pending.values()];
        this.runTransaction(batch);
      }
    } catch (error) {
      this.lastError = `${(error as Error).name === "SQLiteError" ? `${(error as SQLiteError).code}: ` : ""}${(error as Error).message}`;
      this.log.error(
        { path: this.path, err: error, pendingInRam: this.pending.size },
        "queue commit failed; holding readings in RAM and retrying",
      );
      this.capPending();
      this.schedule();
      return;
    }
    for (const p of batch) {
      this.pending.delete(p.seq);
      for (const w of p.waiters ?? []) w.resolve();
    }
    this.deletes.clear();
    this.flags.clear();
    this.ahead.clear();
    this.oldestOpMonoMs = undefined;
    if (this.oldestOnDisk === null && batch.length > 0) this.oldestOnDisk = undefined;
    this.counters.committed += batch.length;
    this.counters.commits++;
    this.lastCommitMonoMs = this.monoMs();
    if (this.lastError !== undefined) this.log.info({ path: this.path }, "queue commits succeed again");
    this.lastError = undefined;
  }

  /** When free disk is below min_free_disk_mb, evict the shortfall (SQLite reuses freed pages). */
  private checkDisk(): void {
    if (this.cfg.minFreeDiskMb <= 0) return;
    let free: number;
    try {
      free = this.freeDiskBytes(dirname(this.path));
    } catch {
      return;
    }
    const shortfall = this.cfg.minFreeDiskMb * MiB - free;
    this.diskLow = shortfall > 0;
    if (!this.diskLow) return;
    const batchBytes = [...this.pending.values()].reduce((n, p) => n + p.bytes, 0);
    this.makeRoom(0, 0, undefined, shortfall + batchBytes);
  }

  /** Drop up to `rows` of `priority` from the RAM buffer, oldest first; their capture waiters fail. */
  private evictPending(
    priority: number,
    rows: number,
    why: (seq: number) => string,
  ): { rows: number; bytes: number } {
    let dropped = 0;
    let bytes = 0;
    for (const p of this.pending.values()) {
      if (dropped === rows) break;
      if (p.reading.priority !== priority) continue;
      this.pending.delete(p.seq);
      this.inflight.delete(p.seq);
      this.addClass(priority, -1, -p.bytes);
      bytes += p.bytes;
      for (const w of p.waiters ?? []) w.reject(new QueueError("evicted", why(p.seq)));
      dropped++;
    }
    return { rows: dropped, bytes };
  }

  /** While commits fail, keep at most maxPendingInRam readings: drop lowest priority, oldest first. */
  private capPending(): void {
    const over = this.pending.size - this.cfg.maxPendingInRam;
    if (over <= 0) return;
    const ram = new Map<number, { rows: number; bytes: number }>();
    for (const p of this.pending.values()) {
      const c = ram.get(p.reading.priority) ?? { rows: 0, bytes: 0 };
      c.rows++;
      c.bytes += p.bytes;
      ram.set(p.reading.priority, c);
    }
    // Protected readings too: RAM is finite, and this cap is the bound the issue asks for.
    const choice = chooseEvictions(
      [...ram].map(([priority, c]) => ({ priority, ...c })),
      { rows: over, bytes: 0 },
      Number.POSITIVE_INFINITY,
    );
    if (!choice.accept) return;
    const counts: Record<number, number> = {};
    for (const { priority, rows } of choice.evict) {
      const dropped = this.evictPending(
        priority,
        rows,
        (seq) => `seq ${seq} dropped from RAM: commits are failing (${this.lastError})`,
      ).rows;
      counts[priority] = dropped;
      this.evictedByPriority[priority] = (this.evictedByPriority[priority] ?? 0) + dropped;
    }
    this.log.error(
      { evictedByPriority: counts, reason: "ram_cap", maxPendingInRam: this.cfg.maxPendingInRam },
      "queue commits failing and RAM buffer full: evicted readings",
    );
  }
}
