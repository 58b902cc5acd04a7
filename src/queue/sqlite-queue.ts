/**
 * SqliteQueue: the store-and-forward queue on bun:sqlite (WAL). It wires the parts, each with its
 * state machine at its top:
 *   write-behind.ts    the RAM buffer (PENDING / HELD → STORED | DELIVERED | EVICTED | WITHDRAWN)
 *   read-ahead.ts      the reader behind next() (per-priority windows, drained prefix skipped)
 *   eviction.ts        which rows an incoming reading or batch may evict (pure)
 *   seq-reservation.ts seqs that never repeat (side file rewritten in place: seq-file.ts)
 *   anchor-store.ts    the clock's anchors (kept in RAM when the disk cannot take them)
 *   lock.ts            one writer per queue (flock)
 *   open-database.ts   the open sequence: pragmas, migration, seq floor, lost state, side file
 *   open.ts, lost-state.ts  opening, quarantine, lost state
 *   batching.ts        when the write-behind buffer commits (pure)
 *   commit-transaction.ts  the writes of one commit, in one transaction (readings, marks, deletes, boots)
 *   commit-timer.ts    the timer that runs it (and retries a failing commit once a second)
 *   disk-room.ts       free disk against min_free_disk_mb, room inside queue.db while it is low
 *   full-disk.ts       a commit's answer to SQLITE_FULL (checkpoint, evict for the batch, undo)
 *   oldest-unsent.ts   the age of the oldest unsent reading (cached oldest row on disk, scan floor)
 *   ingest-batches.ts  open store() batches: gathering window, withdrawal, refusal at a deadline
 *   priority-classes.ts rows and payload bytes per priority, over disk and RAM, minus rows whose
 *                      delete waits for the next commit (loaded by priority-counts.ts)
 * The on-disk format and the life of a reading on disk are in schema.ts.
 *
 * Bookkeeping kept here (all O(1) per reading, none proportional to the backlog on disk):
 * - `inflight`: seqs handed to the broker and not yet acked (loaded from disk at start).
 * - `deletes` / `flags`: seqs to delete and seqs to mark inflight in the next commit, both written
 *   as runs of consecutive seqs, a statement per run (inflight.ts); `deletesBytes`: what those
 *   deletes free.
 * - `handed`: priority and size of disk rows next() returned, so markInflight()/ack() need no
 *   lookup query per row; dropped on ack or eviction.
 *
 * Two ways in, one promise (a reading is *captured* when committed, or acked by the broker at
 * QoS ≥ 1, whichever comes first):
 * - capture(): sensors. The reading waits in RAM up to commit_interval_ms (what saves the SD
 *   card) and is visible to next() at once, so a broker ack can spare it the write.
 * - store(): a client waiting for its answer (the ingest API). The batch is admitted whole or
 *   refused whole (one eviction plan, one seq reservation); its readings are visible to next() at
 *   once (QoS 0 ones only after their commit: no broker ack stands in for it) and are never
 *   evicted while the batch is open. It resolves when every reading is committed or acked. A
 *   gathering window (ingest_commit_ms) brings the commit forward: readings the broker acks
 *   within it are never written (the SD card's saving), the others share one commit (one fsync)
 *   with every request of the window. If that commit fails, a batch none of which went to the
 *   broker is withdrawn — never published — and refused; one the broker has (part of) waits for
 *   the acks or a later commit, up to STORE_DEADLINE_MS (a read-only card with the broker up
 *   still takes readings). The batch's state machine is at the top of ingest-batches.ts.
 *
 * A commit that fails (SQLITE_FULL, EIO, read-only) never throws out of the queue: SQLITE_FULL is
 * answered by a WAL checkpoint(TRUNCATE), then by evicting what the batch needs from lower
 * priorities — undone if the retry still fails, so nothing is counted evicted that was not
 * deleted. Sensor readings are then held in RAM (bounded by maxPendingInRam) and retried once a
 * second; stats().lastError says why until a commit succeeds again.
 *
 * Nothing at capture needs a new disk block: seq blocks are reserved by rewriting the side file in
 * place (seq-file.ts) and recorded in meta by the next commit; a new boot id is registered inside
 * the commit; anchors that cannot be saved wait in RAM (anchor-store.ts).
 */
import type { Database, SQLiteError } from "bun:sqlite";
import { readFileSync } from "node:fs";
import { realScheduler, type Scheduler } from "../clock/scheduler.ts";
import type { Anchor, AnchorStore } from "../clock/types.ts";
import { CLOCK_MONOTONIC, clockGettimeNs, statvfs } from "../hal/libc/index.ts";
import type { Logger } from "../log/index.ts";
import { QueueAnchorStore } from "./anchor-store.ts";
import { CommitTimer } from "./commit-timer.ts";
import { type WrittenCommit, writeCommit } from "./commit-transaction.ts";
import { countDeadLetters, insertDeadLetters, loadStrikes, saveStrikes } from "./dead-letter.ts"; // #12 dead letters, poison strikes
import { DiskRoom } from "./disk-room.ts";
import { QueueError } from "./errors.ts";
import { chooseEvictions } from "./eviction.ts";
import { commitThroughFullDisk } from "./full-disk.ts";
import { InflightRuns } from "./inflight.ts";
import { IngestBatches } from "./ingest-batches.ts";
import { acquireQueueLock, type QueueLock } from "./lock.ts";
import { type OldestRow, OldestUnsentOnDisk, oldestUnsentInRam, unsentAgeS } from "./oldest-unsent.ts";
import { checkDataDir, isSqliteError, requestCheck } from "./open.ts";
import { type OpenHistory, openDatabase, readOpenHistory } from "./open-database.ts";
import { PriorityClasses } from "./priority-classes.ts";
import { loadPriorityCounts } from "./priority-counts.ts";
import { type DiskRow, ReadAheadReader } from "./read-ahead.ts";
import { ROW_COLUMNS, type Row, rowToReading } from "./rows.ts";
import { payloadBytes } from "./schema.ts";
import type { SeqFile } from "./seq-file.ts";
import { SeqReservation } from "./seq-reservation.ts";
import { describeStorageFault, isStorageFault } from "./storage-fault.ts";
import type { CaptureResult, Queue, QueuedReading, QueueStats, Reading, StoreResult } from "./types.ts";
import { type Pending, type Tentative, WriteBehindBuffer } from "./write-behind.ts";

export interface QueueOptions {
  path: string;
  log: Logger;
  durability?: "full" | "normal";
  commitIntervalMs?: number;
  /**
   * Gathering window for store() (ingest) readings, ms: the longest a 201 waits for its commit.
   * Readings the broker acks within it are never written; those it does not share one commit.
   */
  ingestCommitMs?: number;
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

/** queue.ingest_commit_ms's default (the config schema has the same; README says why). */
export const DEFAULT_INGEST_COMMIT_MS = 200;

const MiB = 1024 * 1024;

/**
 * CLOCK_MONOTONIC in ms, read through performance.now() (also monotonic, and ~10× cheaper than a
 * clock_gettime FFI call on every capture) shifted once onto CLOCK_MONOTONIC's origin.
 */
function monotonicMs(): () => number {
  const offset = Number(clockGettimeNs(CLOCK_MONOTONIC)) / 1e6 - performance.now();
  return () => offset + performance.now();
}

/** SQLite found the file damaged (directly, or as the cause of a QueueError). */
function isCorrupt(error: unknown): boolean {
  const e = error instanceof QueueError ? error.cause : error;
  return isSqliteError(e, "SQLITE_CORRUPT") || isSqliteError(e, "SQLITE_NOTADB");
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
  private readonly pending = new WriteBehindBuffer();
  private readonly classes = new PriorityClasses();
  private readonly inflight = new Set<number>();
  private readonly deletes = new Set<number>();
  private readonly flags = new Set<number>();
  private readonly handed = new Map<number, { priority: number; bytes: number }>();
  private readonly reader: ReadAheadReader;
  /** Inflight marks and deletes as runs of seqs (inflight.ts). */
  private readonly inflightRuns: InflightRuns;
  private readonly listeners = new Set<() => void>();
  /** boot_id text → boots.id; a new boot id is registered by the commit that first stores it. */
  private readonly boots = new Map<string, number>();
  /** Payload bytes of rows whose delete waits for the next commit (space that commit frees). */
  private deletesBytes = 0;
  /** Open store() batches: their gathering window, their fate when a commit fails. */
  private readonly batches: IngestBatches;
  private oldestOpMonoMs: number | undefined;
  private readonly timer: CommitTimer;
  private notifyQueued = false;
  private closed = false;
  private readonly seqs: SeqReservation;
  private counters = { captured: 0, committed: 0, commits: 0, delivered: 0, deliveredBeforeCommit: 0 };
  private readonly evictedByPriority: Record<number, number> = {};
  private readonly refusedByPriority: Record<number, number> = {};
  private lastCommitMonoMs: number | undefined;
  private lastAttemptMonoMs: number | undefined;
  private lastError: string | undefined;
  /** While commits fail because the medium or its file system does (storage-fault.ts): what and where. */
  private storageFault: string | undefined;
  /** Damage was met and the next start asked to check the file (damaged()). */
  private checkRequested = false;
  /** Times this open found state lost (0 or 1; counted in /metrics). */
  private stateLost = 0;
  /** Why the database cannot be read (EIO), from stats(); cleared by the next good read. */
  private readError: string | undefined;
  /** Free disk against min_free_disk_mb, and the room inside queue.db while it is low. */
  private readonly disk: DiskRoom;
  private readonly oldest: OldestUnsentOnDisk;
  private readonly cfg: Required<
    Omit<QueueOptions, "log" | "path" | "maxPageCount" | "bootId" | "scheduler" | "monoMs" | "freeDiskBytes">
  >;
  private readonly monoMs: () => number;
  private readonly scheduler: Scheduler;
  private readonly log: Logger;
  private readonly anchors: QueueAnchorStore;
  readonly path: string;
  readonly bootId: string;

  private constructor(
    private readonly db: Database,
    options: QueueOptions,
    seqFloor: number,
    private readonly lock: QueueLock,
    seqFile: SeqFile | undefined,
  ) {
    this.anchors = new QueueAnchorStore(db, options.log);
    this.reader = new ReadAheadReader(db, (error) => this.damaged(error));
    this.inflightRuns = new InflightRuns(db);
    this.path = options.path;
    this.log = options.log;
    this.bootId = options.bootId ?? defaultBootId();
    this.oldest = new OldestUnsentOnDisk(db, this.bootId, this.boots, this.inflight, this.deletes);
    this.monoMs = options.monoMs ?? monotonicMs();
    this.scheduler = options.scheduler ?? realScheduler;
    this.cfg = {
      durability: options.durability ?? "full",
      commitIntervalMs: options.commitIntervalMs ?? 1000,
      ingestCommitMs: options.ingestCommitMs ?? DEFAULT_INGEST_COMMIT_MS,
      commitMaxRows: options.commitMaxRows ?? 1000,
      maxRows: options.maxRows ?? 1_000_000,
      maxBytes: options.maxBytes ?? 512 * MiB,
      minFreeDiskMb: options.minFreeDiskMb ?? 64,
      protectedPriority: options.protectedPriority ?? 9,
      seqBlock: options.seqBlock ?? 4096,
      maxPendingInRam: options.maxPendingInRam ?? Math.max(10_000, 10 * (options.commitMaxRows ?? 1000)),
    };
    this.disk = new DiskRoom(
      this.path,
      this.cfg.minFreeDiskMb,
      options.freeDiskBytes ?? ((dir) => statvfs(dir).availableBytes),
      () => this.monoMs(),
    );
    this.seqs = new SeqReservation(seqFloor, seqFile, this.cfg.seqBlock, this.path, this.log);
    this.timer = new CommitTimer({
      scheduler: this.scheduler,
      cfg: this.cfg,
      monoMs: () => this.monoMs(),
      closed: () => this.closed,
      failing: () => this.lastError !== undefined,
      pendingRows: () => this.pending.size,
      state: () => ({
        pendingRows: this.pending.size,
        oldestRowMonoMs: this.pending.oldest()?.capturedMonoMs,
        // Inflight marks are written as runs (inflight.ts), a statement per block of seqs: they
        // ride with deletes or wait one interval, never force a commit of their own.
        pendingOps: this.deletes.size + (this.flags.size > 0 ? 1 : 0),
        oldestOpMonoMs: this.oldestOpMonoMs,
      }),
      commit: () => this.commit(),
    });
    this.batches = new IngestBatches({
      pending: this.pending,
      scheduler: this.scheduler,
      cfg: this.cfg,
      monoMs: () => this.monoMs(),
      delivered: () => this.counters.delivered,
      commit: () => this.commit(),
      lastError: () => this.lastError,
      captured: (batch) => {
        this.counters.captured += batch.seqs.length;
        if (batch.evictions.length > 0) this.logEvicted(batch.evictions);
      },
      withdrawn: (p) => {
        this.classes.add(p.reading.priority, -1, -p.bytes);
        this.refusedByPriority[p.reading.priority] = (this.refusedByPriority[p.reading.priority] ?? 0) + 1;
      },
      undoEviction: (rows) => this.undoEviction(rows),
    });
  }

  static async open(options: QueueOptions): Promise<SqliteQueue> {
    checkDataDir(options.path);
    const history = readOpenHistory(options.path); // before the lock is taken: taking it creates the file
    const lock = acquireQueueLock(options.path);
    try {
      return SqliteQueue.openLocked(options, lock, history);
    } catch (error) {
      lock.release();
      throw error;
    }
  }

  /**
   * Open with the writer lock held. Writes nothing unless the file is new (or its seq side file
   * is), so a queue on a full disk opens and keeps delivering.
   */
  private static openLocked(options: QueueOptions, lock: QueueLock, history: OpenHistory): SqliteQueue {
    try {
      return SqliteQueue.openOnce(options, lock, history);
    } catch (error) {
      // quick_check was skipped (clean shutdown) but reading the file found damage: check it in
      // full now, which moves it aside, and start again.
      if (!isCorrupt(error)) throw error;
      options.log.warn({ path: options.path, err: error }, "queue database is damaged; checking it in full");
      return SqliteQueue.openOnce(options, lock, history, true);
    }
  }

  private static openOnce(
    options: QueueOptions,
    lock: QueueLock,
    history: OpenHistory,
    check?: boolean,
  ): SqliteQueue {
    const bootId = options.bootId ?? defaultBootId();
    const { db, floor, seqFile, lost, sideFile, metaReserved } = openDatabase(
      { ...options, bootId },
      history,
      check,
    );
    const queue = new SqliteQueue(db, { ...options, bootId }, floor, lock, seqFile);
    if (lost) {
      queue.stateLost++;
      options.log.error(
        {
          path: options.path,
          lost: lost.kind,
          seqNext: floor + 1,
          sideFile,
          metaReserved: metaReserved ?? null,
        },
        `queue state lost: ${lost.detail}`,
      );
    }
    try {
      queue.load(lost !== undefined);
    } catch (error) {
      db.close(false);
      seqFile?.close();
      throw error;
    }
    return queue;
  }

  /** Load the books from disk in O(priorities + inflight); `recount` after lost state. */
  private load(recount: boolean): void {
    const counts = loadPriorityCounts(this.db, recount);
    for (const r of counts.counts) this.classes.add(r.priority, r.rows, r.bytes);
    if (counts.how !== "read")
      this.log.info(
        { path: this.path, how: counts.how, err: counts.error },
        counts.how === "rebuilt"
          ? "queue: per-priority counts (re)built; later opens read them"
          : "queue: per-priority counts cannot be saved now (the disk takes no writes); counted the rows",
      );
    for (const r of this.db.query("SELECT id, boot_id FROM boots").all() as Array<{
      id: number;
      boot_id: string;
    }>)
      this.boots.set(r.boot_id, r.id);
    for (const seq of this.inflightRuns.load()) this.inflight.add(seq);
    this.log.info(
      {
        path: this.path,
        rows: this.classes.totals().rows,
        inflight: this.inflight.size,
        seqNext: this.seqs.next,
      },
      "queue opened",
    );
  }

  capture(reading: Reading): CaptureResult {
    if (this.closed) throw new QueueError("closed", `queue ${this.path} is closed`);
    const vals = JSON.stringify(reading.values);
    const bytes = payloadBytes(reading.stream, reading.bootId, reading.tq, vals);
    const refusal = this.seqs.reserve(1) ?? this.makeRoom(1, bytes, reading.priority);
    if (refusal !== undefined) {
      this.refusedByPriority[reading.priority] = (this.refusedByPriority[reading.priority] ?? 0) + 1;
      return { ok: false, reason: "refused", detail: refusal };
    }
    const seq = this.seqs.take();
    const now = this.monoMs();
    this.pending.add({ seq, reading, vals, bytes, capturedMonoMs: now, inflight: false });
    this.classes.add(reading.priority, 1, bytes);
    this.counters.captured++;
    if (this.cfg.commitIntervalMs === 0) this.commit();
    else this.timer.schedule();
    this.notify();
    return { ok: true, seq };
  }

  store(readings: Reading[]): Promise<StoreResult> {
    if (this.closed) return Promise.resolve({ ok: false, detail: `queue ${this.path} is closed` });
    if (readings.length === 0) return Promise.resolve({ ok: true, seqs: [] });
    const items = readings.map((reading) => {
      const vals = JSON.stringify(reading.values);
      return { reading, vals, bytes: payloadBytes(reading.stream, reading.bootId, reading.tq, vals) };
    });
    const bytes = items.reduce((n, i) => n + i.bytes, 0);
    // Only rows below (or older at) the batch's lowest priority may make room for it.
    const lowest = Math.min(...readings.map((r) => r.priority));
    const evictions: Tentative[] = [];
    const refusal = this.seqs.reserve(items.length) ?? this.makeRoom(items.length, bytes, lowest, evictions);
    if (refusal !== undefined) {
      for (const r of readings)
        this.refusedByPriority[r.priority] = (this.refusedByPriority[r.priority] ?? 0) + 1;
      return Promise.resolve({ ok: false, detail: refusal });
    }
    return new Promise<StoreResult>((resolve) => {
      const batch = this.batches.create(resolve, evictions, items.length);
      const captured = batch.waiter;
      const now = this.monoMs();
      for (const i of items) {
        const seq = this.seqs.take();
        batch.seqs.push(seq);
        // QoS 0 has no broker ack to stand in for the commit: it waits, unseen, for the commit.
        const held = i.reading.qos === 0 ? batch : undefined;
        this.pending.add({
          seq,
          ...i,
          capturedMonoMs: now,
          inflight: false,
          held,
          batch,
          waiters: [captured],
        });
        this.classes.add(i.reading.priority, 1, i.bytes);
      }
      this.batches.admit(batch, now);
      if (this.cfg.commitIntervalMs === 0) this.commit();
      else this.batches.gather();
      this.notify();
    });
  }

  /**
   * The file is damaged (met while reading or committing): the next start checks it in full and
   * moves it aside (open.ts, checkMarkerPath). Logged once.
   */
  private damaged(error: unknown): void {
    if (this.checkRequested || !isCorrupt(error)) return;
    this.checkRequested = true;
    const marked = requestCheck(this.path, String((error as Error).message ?? error));
    this.log.error(
      { path: this.path, err: error, marked },
      "queue database is damaged; the next start checks it in full and moves it aside",
    );
  }

  whenCaptured(seqs: number[]): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const seq of seqs) {
      const why = this.pending.lostReason(seq);
      if (why !== undefined) return Promise.reject(new QueueError("evicted", why));
      const p = this.pending.get(seq);
      if (!p) continue; // committed or acked: nothing to wait for
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
    const resend: number[] = [];
    for (const seq of this.inflight) if (!exclude.has(seq)) resend.push(seq);
    resend.sort((a, b) => a - b);
    for (const seq of resend) {
      if (out.length >= limit) return out;
      const r = this.get(seq);
      if (r) {
        out.push(r);
        seen.add(seq);
      }
    }
    const deletes = this.deletes;
    const hidden =
      seen.size > 0
        ? (seq: number) => exclude.has(seq) || seen.has(seq) || deletes.has(seq)
        : (seq: number) => exclude.has(seq) || deletes.has(seq);
    const drained = (seq: number) => this.inflight.has(seq) || this.deletes.has(seq);
    for (const priority of this.classes.prioritiesHighFirst()) {
      const ram =
        this.pending.size === 0
          ? []
          : [...this.pending.values()].filter(
              (p) => p.reading.priority === priority && p.held === undefined && !hidden(p.seq),
            );
      const ahead = this.reader.of(priority);
      let ri = 0;
      let i = ahead.at;
      let prefix = true; // still inside the run of drained rows at the front of this priority
      while (out.length < limit) {
        if (i >= ahead.rows.length && !ahead.exhausted) {
          try {
            i -= this.reader.refill(priority, ahead);
          } catch (error) {
            // An unreadable disk (EIO): hand out what RAM holds; the next commit retries the read.
            ahead.exhausted = true;
            if (this.readError === undefined)
              this.log.error({ err: error, path: this.path }, "queue cannot read its database");
            this.readError = `cannot read ${this.path}: ${(error as Error).message}`;
          }
          continue;
        }
        let drainedSeq: number | undefined;
        while (i < ahead.rows.length && hidden((ahead.rows[i] as DiskRow)[0])) {
          const seq = (ahead.rows[i] as DiskRow)[0];
          if (prefix && drained(seq)) {
            ahead.at = i + 1;
            drainedSeq = seq;
          } else prefix = false;
          i++;
        }
        if (drainedSeq !== undefined) this.reader.drainedTo(priority, drainedSeq);
        if (i >= ahead.rows.length && !ahead.exhausted) continue;
        const dbRow = ahead.rows[i];
        const ramRow = ram[ri];
        if (!dbRow && !ramRow) break;
        if (dbRow && (!ramRow || dbRow[0] < ramRow.seq)) {
          out.push(this.reader.toReading(dbRow));
          this.handed.set(dbRow[0], { priority: dbRow[2], bytes: dbRow[10] });
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

  markInflight(seqs: number[]): void {
    const ram = this.pending.size > 0;
    for (const seq of seqs) {
      if (this.deletes.has(seq)) continue;
      const p = ram ? this.pending.get(seq) : undefined;
      if (p) {
        p.inflight = true;
        this.inflight.add(seq);
      } else if (!this.inflight.has(seq) && (this.handed.has(seq) || this.lookup(seq))) {
        this.inflight.add(seq);
        this.flags.add(seq);
        this.oldest.touch(seq);
        this.oldestOpMonoMs ??= this.monoMs();
      }
    }
    this.timer.schedule();
  }

  ack(seqs: number[]): void {
    const ram = this.pending.size > 0;
    // Rows and bytes leaving each priority class, added up once per call (a batch is one class).
    let classPriority: number | undefined;
    let classRows = 0;
    let classBytes = 0;
    for (const seq of seqs) {
      this.inflight.delete(seq);
      const p = ram ? this.pending.get(seq) : undefined;
      if (p) {
        if (p.held) continue; // never handed out: cannot be acked
        this.pending.remove(p);
        this.classes.add(p.reading.priority, -1, -p.bytes);
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
      this.deletesBytes += row.bytes;
      this.oldest.touch(seq);
      if (row.priority !== classPriority) {
        if (classPriority !== undefined) this.classes.add(classPriority, -classRows, -classBytes);
        classPriority = row.priority;
        classRows = 0;
        classBytes = 0;
      }
      classRows++;
      classBytes += row.bytes;
      this.counters.delivered++;
      this.oldestOpMonoMs ??= this.monoMs();
    }
    if (classPriority !== undefined) this.classes.add(classPriority, -classRows, -classBytes);
    this.timer.schedule();
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

  strikes(): Map<number, number> {
    const kept = loadStrikes(this.db);
    for (const seq of kept.keys()) if (this.get(seq) === undefined) kept.delete(seq);
    return kept;
  }

  saveStrikes(strikes: ReadonlyMap<number, number>): void {
    saveStrikes(this.db, strikes);
  }
  // ---- end #12 dead letters ----

  async flush(): Promise<void> {
    this.commit();
    // #12: flush is truthful — a failed commit (readings held in RAM and retried) is an error.
    if (this.lastError !== undefined && this.pending.size > 0)
      throw new QueueError(
        "commit-failed",
        `queue ${this.path}: commit failed (${this.lastError}); ${this.pending.size} reading(s) wait in RAM and are retried`,
      );
  }

  stats(): QueueStats {
    const totals = this.classes.totals();
    this.deadLetterCount ??= countDeadLetters(this.db); // #12 dead letters
    return {
      ...this.counters,
      evictedByPriority: { ...this.evictedByPriority },
      refusedByPriority: { ...this.refusedByPriority },
      rows: totals.rows,
      rowsByPriority: this.classes.rowsByPriority(),
      bytes: totals.bytes,
      pendingInRam: this.pending.size,
      inflight: this.inflight.size,
      oldestUnsentAgeS: this.oldestUnsentAgeS(),
      refusing: this.classes.refusing(this.cfg, this.disk.low),
      lastCommitMonoMs: this.lastCommitMonoMs,
      lastCommitAttemptMonoMs: this.lastAttemptMonoMs,
      lastError: this.lastError ?? this.seqs.error ?? this.readError,
      storageFault: this.storageFault,
      seqNext: this.seqs.next,
      stateLost: this.stateLost,
      deadLetters: this.deadLetterCount, // #12 dead letters
      lastDeadLetterReason: this.lastDeadLetterReason, // #12 dead letters
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.commit();
    this.timer.clear();
    this.closed = true;
    for (const p of this.pending.values()) {
      for (const w of p.waiters ?? [])
        w.reject(new QueueError("closed", `queue ${this.path} closed before seq ${p.seq} was committed`));
    }
    this.batches.withdrawOpen(`queue ${this.path} closed before the readings were committed`, true);
    if (this.pending.size > 0)
      this.log.error(
        { lost: this.pending.size, lastError: this.lastError },
        "queue closed with uncommitted readings",
      );
    this.db.close(false);
    this.seqs.close();
    this.lock.release();
  }

  // ---- AnchorStore ----

  saveAnchor(anchor: Anchor, drop?: readonly Anchor[]): void {
    this.anchors.saveAnchor(anchor, drop);
    if (this.anchors.pending > 0) {
      this.oldestOpMonoMs ??= this.monoMs();
      this.timer.schedule();
    }
  }

  anchorsFor(bootId: string): Anchor[] {
    return this.anchors.anchorsFor(bootId);
  }

  // ---- internals ----

  private oldestUnsentAgeS(): number {
    const ramNs = oldestUnsentInRam(this.pending.values(), this.bootId);
    // stats() feeds STATUS, the watchdog and /health: a failing disk must not make it throw.
    let disk: OldestRow | null = null;
    try {
      disk = this.oldest.onDisk();
      this.readError = undefined;
    } catch (error) {
      this.oldest.touch();
      this.readError = `cannot read ${this.path}: ${(error as Error).message}`;
    }
    return unsentAgeS(ramNs, disk, this.monoMs());
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
   * Bring rows, bytes and (below min_free_disk_mb) file growth within budget before adding `rows`
   * readings of at least `priority`, evicting only what they need from priorities at or below it.
   * Returns the refusal detail — and then nothing it evicted from disk stays evicted — or
   * undefined. With `tentative` (a held batch), only disk rows are evicted and they are listed
   * there, to be undone if the batch's commit fails.
   */
  private makeRoom(
    rows: number,
    bytes: number,
    priority: number,
    tentative?: Tentative[],
  ): string | undefined {
    this.disk.check(false);
    const made: Tentative[] = [];
    for (let round = 0; round < 8; round++) {
      const t = this.classes.totals();
      // Below min_free_disk_mb the file must not grow: what comes in must fit in the space the
      // file already has (free pages, rows whose delete is pending) beyond what RAM still holds.
      const diskNeed = this.disk.low
        ? bytes - (this.disk.roomBytes + this.deletesBytes - this.pending.bytes)
        : 0;
      const overBytes = t.bytes + bytes - this.cfg.maxBytes;
      const need = { rows: t.rows + rows - this.cfg.maxRows, bytes: Math.max(overBytes, diskNeed) };
      const choice = chooseEvictions(this.classes.list(), need, this.cfg.protectedPriority, { priority });
      if (!choice.accept) {
        // Never both evict and refuse: put back what earlier rounds took from disk.
        if (made.length > 0) this.undoEviction(made);
        return choice.detail;
      }
      if (choice.evict.length === 0) break;
      // The reason is the budget that sized the eviction (both may be exceeded at once).
      const reason = need.rows > 0 ? "max_rows" : diskNeed > overBytes ? "min_free_disk_mb" : "max_bytes";
      const evicted = this.evict(choice.evict, reason, tentative !== undefined);
      made.push(...evicted.tentative);
      if (choice.shortfall || evicted.freed === 0) break;
    }
    tentative?.push(...made);
    return undefined;
  }

  /**
   * Evict the oldest `rows` of each priority: from disk first (older), then from RAM (never a
   * held batch). With `diskOnly`, RAM is left alone and the disk rows are returned so that the
   * caller can undo the eviction if the commit it was for still fails.
   */
  private evict(
    plan: Array<{ priority: number; rows: number }>,
    reason: string,
    diskOnly = false,
  ): { freed: number; tentative: Tentative[] } {
    const counts: Record<number, number> = {};
    const tentative: Tentative[] = [];
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
          tentative.push({
            seq: r.seq,
            reason,
            priority,
            bytes: r.bytes,
            inflight: this.inflight.has(r.seq),
            flagged: this.flags.has(r.seq),
          });
          this.deletes.add(r.seq);
          this.deletesBytes += r.bytes;
          this.oldest.touch(r.seq);
          this.flags.delete(r.seq);
          this.inflight.delete(r.seq);
          this.handed.delete(r.seq);
          this.classes.add(priority, -1, -r.bytes);
          freed += r.bytes;
          left--;
        }
      }
      const fromRam = diskOnly
        ? { rows: 0, bytes: 0 }
        : this.evictPending(priority, left, (seq) => `seq ${seq} was evicted (${reason}) before its commit`);
      left -= fromRam.rows;
      freed += fromRam.bytes;
      const n = rows - left;
      if (n > 0) {
        counts[priority] = n;
        this.evictedByPriority[priority] = (this.evictedByPriority[priority] ?? 0) + n;
      }
    }
    if (this.deletes.size > 0) this.oldestOpMonoMs ??= this.monoMs();
    if (!diskOnly)
      this.log.warn(
        { evictedByPriority: counts, reason, freedBytes: freed },
        "queue over budget: evicted readings",
      );
    return { freed, tentative };
  }

  /** Log evictions that were tentative and now stand (their commit succeeded). */
  private logEvicted(rows: Tentative[]): void {
    const counts: Record<number, number> = {};
    const reasons = new Set<string>();
    let freed = 0;
    for (const r of rows) {
      counts[r.priority] = (counts[r.priority] ?? 0) + 1;
      reasons.add(r.reason);
      freed += r.bytes;
    }
    this.log.warn(
      { evictedByPriority: counts, reason: [...reasons].join(","), freedBytes: freed },
      "queue over budget: evicted readings",
    );
  }

  /** Put back disk rows a failed commit had evicted: nothing was deleted, so nothing is counted. */
  private undoEviction(rows: Tentative[]): void {
    for (const r of rows) {
      this.deletes.delete(r.seq);
      this.deletesBytes -= r.bytes;
      if (r.inflight) this.inflight.add(r.seq);
      if (r.flagged) this.flags.add(r.seq);
      this.classes.add(r.priority, 1, r.bytes);
      this.evictedByPriority[r.priority] = (this.evictedByPriority[r.priority] ?? 0) - 1;
      if (this.evictedByPriority[r.priority] === 0) delete this.evictedByPriority[r.priority];
      this.reader.rewind(r.priority); // the read-ahead may have skipped them as drained
      this.oldest.rewindTo(r.seq);
    }
    this.oldest.touch();
  }

  /**
   * Commit everything pending in ONE transaction. On SQLITE_FULL: checkpoint(TRUNCATE) and retry;
   * then evict from disk what the batch needs (lower priorities than the batch's lowest, oldest
   * first) and retry; if that fails too the eviction is undone. On failure held batches are
   * withdrawn (their clients get 503), sensor readings stay in RAM, and the commit is retried.
   */
  private commit(): void {
    if (this.closed) return;
    this.timer.clear();
    // This commit takes every batch waiting (or, failing, withdraws them or lets them wait for acks).
    this.batches.taken();
    if (
      this.pending.size === 0 &&
      this.deletes.size === 0 &&
      this.flags.size === 0 &&
      !this.seqs.dirty &&
      this.anchors.pending === 0
    )
      return;
    this.disk.check();
    this.lastAttemptMonoMs = this.monoMs();
    const batch = [...this.pending.values()];
    let written: WrittenCommit;
    try {
      written = this.commitWithRetries(batch);
    } catch (error) {
      // Rolled back (commit-transaction.ts): the books in RAM, inflight runs included, stay as they were.
      this.damaged(error);
      const previous = this.lastError;
      this.lastError = `${(error as Error).name === "SQLiteError" ? `${(error as SQLiteError).code}: ` : ""}${(error as Error).message}`;
      this.batches.withdrawOpen(`readings could not be stored: ${this.lastError}`);
      // Retried once a second: log when the failure changes, not each time (a dead card must not
      // also flood the journal).
      if (isStorageFault(error)) {
        if (this.storageFault === undefined) {
          this.storageFault = describeStorageFault(this.path, error);
          this.log.error({ path: this.path, err: error, pendingInRam: this.pending.size }, this.storageFault);
        }
      } else if (this.lastError !== previous)
        this.log.error(
          { path: this.path, err: error, pendingInRam: this.pending.size },
          "queue commit failed; holding readings in RAM and retrying",
        );
      this.capPending();
      this.timer.schedule();
      return;
    }
    for (const [bootId, id] of written.newBoots) this.boots.set(bootId, id);
    let unveiled = false;
    for (const p of batch) {
      this.pending.remove(p);
      if (p.held) unveiled = true;
      for (const w of p.waiters ?? []) w.resolve(); // settles store() batches whose last reading this was
    }
    // QoS 0 ingest readings become sendable only now: wake the publisher, or they would wait for
    // the next sensor capture or reconnect (none without sensors).
    if (unveiled) this.notify();
    this.anchors.committed();
    this.seqs.dirty = false;
    this.inflightRuns.apply(written.plan);
    this.reader.committed(batch.length > 0, this.deletes);
    this.deletes.clear();
    this.deletesBytes = 0;
    this.flags.clear();
    this.oldestOpMonoMs = undefined;
    if (batch.length > 0) this.oldest.rowsWritten();
    this.counters.committed += batch.length;
    this.counters.commits++;
    this.lastCommitMonoMs = this.monoMs();
    this.disk.measure(this.db);
    if (this.lastError !== undefined) this.log.info({ path: this.path }, "queue commits succeed again");
    this.lastError = undefined;
    this.storageFault = undefined;
  }

  /** The batch's transaction, through a full disk (full-disk.ts). */
  private commitWithRetries(batch: Pending[]): WrittenCommit {
    return commitThroughFullDisk({
      attempt: () =>
        writeCommit(this.db, {
          batch,
          boots: this.boots,
          seqMark: this.seqs.dirty ? this.seqs.mark : undefined,
          writeAnchors: () => this.anchors.writeUnsaved(),
          persistRuns: () => this.inflightRuns.persist(this.flags, this.deletes),
        }),
      // The WAL may hold most of the space: copy it into the database and give its blocks back.
      checkpoint: () => void this.db.query("PRAGMA wal_checkpoint(TRUNCATE)").all(),
      evict: () => {
        if (batch.length === 0) return undefined;
        const lowest = Math.min(...batch.map((p) => p.reading.priority));
        const need = batch.reduce((n, p) => n + p.bytes, 0) - this.deletesBytes;
        if (need <= 0) return undefined;
        const choice = chooseEvictions(
          this.classes.list(),
          { rows: 0, bytes: need },
          this.cfg.protectedPriority,
          {
            priority: lowest,
          },
        );
        if (!choice.accept || choice.evict.length === 0) return undefined;
        return this.evict(choice.evict, "disk_full", true);
      },
      keep: ({ tentative }) => this.logEvicted(tentative),
      undo: ({ tentative }) => this.undoEviction(tentative),
    });
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
      if (p.reading.priority !== priority || p.batch) continue; // an open store() batch: all or none
      this.pending.evicted(p, why(p.seq));
      this.inflight.delete(p.seq);
      this.classes.add(priority, -1, -p.bytes);
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
