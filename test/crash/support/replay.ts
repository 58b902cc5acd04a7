/**
 * The replayer: rebuilds the data partition at every crash point of a dm-log-writes log and checks
 * what a device that lost power there would come back with.
 *
 * One working image advances through the log (entries applied in order); at each point a copy of
 * it (plus, for a mid-flush sample, the unflushed writes the PRNG kept) is what the card holds.
 * On that copy: e2fsck replays the ext4 journal and must then find nothing to fix; debugfs takes
 * queue.db (+ -wal, .seq) out; fieldrelay's own read path opens it read-only (what
 * `fieldrelay queue export` runs) and the service's open path must not quarantine it. Then every
 * reading acknowledged by a mark before the point is in the queue or was received by the broker
 * before the point, and the seq a restart would hand out is above every seq already handed out.
 */

import { Database } from "bun:sqlite";
import { spawnSync } from "node:child_process";
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { silentLogger } from "../../../src/log/index.ts";
import { openQueueReader } from "../../../src/queue/index.ts";
import { openOrQuarantine } from "../../../src/queue/open.ts";
import { readSeqFile } from "../../../src/queue/seq-file.ts";
import {
  type CrashPoint,
  markEvents,
  Obligations,
  type PlanOptions,
  planCrashPoints,
} from "./crash-points.ts";
import { decodeEntry, decodeSuper, type LogEntry, type LogSuper } from "./log-writes.ts";

export interface ReplayInput {
  /** The log device's image (as the guest left it). */
  log: string;
  /** The logged device's image as it was when the log-writes target was created. */
  base: string;
  /** Scratch directory, ideally on tmpfs. */
  work: string;
  /** Seqs the queue may legitimately have evicted (lowest priority, over budget). */
  evictable: ReadonlySet<number>;
  plan: PlanOptions;
  /** Stop checking after this many failing points (the report lists them). */
  maxFailures?: number;
  /** Path of the queue inside the file system. */
  queueFile?: string;
}

export interface PointVerdict {
  point: CrashPoint;
  phase: string;
  problems: string[];
}

export interface ReplayReport {
  entries: number;
  durabilityPoints: number;
  flushPointsChecked: number;
  samplesChecked: number;
  marks: number;
  /** Readings acknowledged by the marks of the whole log. */
  acknowledged: number;
  failures: PointVerdict[];
  /** Acknowledged readings found missing, summed over points. */
  lost: number;
  unopenable: number;
  seqRegressions: number;
  fsckFailures: number;
  seconds: number;
}

/** Reads every entry header of a log image. */
export function readLog(path: string): { sup: LogSuper; entries: LogEntry[] } {
  const fd = openSync(path, "r");
  try {
    const head = Buffer.alloc(4096);
    readSync(fd, head, 0, head.length, 0);
    const sup = decodeSuper(head);
    const entries: LogEntry[] = [];
    const header = Buffer.alloc(sup.sectorSize);
    let offset = sup.sectorSize;
    for (let i = 0; i < sup.nrEntries; i++) {
      if (readSync(fd, header, 0, header.length, offset) !== header.length) break;
      const { entry, next } = decodeEntry(header, offset, i, sup.sectorSize);
      entries.push(entry);
      offset = next;
    }
    return { sup, entries };
  } finally {
    closeSync(fd);
  }
}

/** Applies entries to an image file descriptor (data copied from the log's fd). */
class Applier {
  private buf = Buffer.alloc(1 << 20);
  constructor(
    private readonly logFd: number,
    private readonly sectorSize: number,
  ) {}

  apply(imageFd: number, e: LogEntry): void {
    if (e.kind === "mark" || e.kind === "flush") return;
    const bytes = e.nrSectors * this.sectorSize;
    if (this.buf.length < bytes) this.buf = Buffer.alloc(bytes);
    if (e.kind === "discard") {
      // What a discarded range reads back as is up to the device; zeros is one thing it may do.
      this.buf.fill(0, 0, bytes);
    } else if (readSync(this.logFd, this.buf, 0, bytes, e.dataOffset) !== bytes) {
      throw new Error(`log entry ${e.index}: data truncated at byte ${e.dataOffset}`);
    }
    writeSync(imageFd, this.buf, 0, bytes, e.sector * this.sectorSize);
  }
}

function run(argv: string[]): { status: number | null; out: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", maxBuffer: 64 << 20 });
  return { status: r.status, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

interface QueueState {
  seqs: Set<number>;
  nextSeq: number;
}

/** PRAGMA user_version of a queue file (0: no migration ever committed). */
function schemaVersion(path: string): number {
  const db = new Database(path, { readonly: true });
  try {
    return (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
  } catch {
    return -1; // not readable at all: the open paths below say why
  } finally {
    db.close();
  }
}

/** fsck + extract + open one crash image; returns problems found, or the queue's contents. */
function inspect(image: string, dir: string, queueFile: string): { problems: string[]; queue?: QueueState } {
  const problems: string[] = [];
  // Journal replay is what the kernel does at mount; after it the file system must be clean.
  const replay = run(["e2fsck", "-y", "-E", "journal_only", image]);
  if (replay.status !== 0 && replay.status !== 1)
    problems.push(
      `e2fsck journal replay exit ${replay.status}: ${replay.out.trim().split("\n").slice(-3).join(" | ")}`,
    );
  const check = run(["e2fsck", "-fn", image]);
  if (check.status !== 0)
    problems.push(
      `e2fsck -fn after journal replay exit ${check.status}: ${check.out.trim().split("\n").slice(-4).join(" | ")}`,
    );
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const names = ["", "-wal", ".seq"];
  const cmds = names.map((n) => `dump ${queueFile}${n} ${join(dir, `queue.db${n}`)}`).join("\n");
  const dumped = spawnSync("debugfs", ["-f", "-", image], { input: cmds, encoding: "utf8" });
  if (dumped.status !== 0) problems.push(`debugfs exit ${dumped.status}: ${dumped.stderr}`);
  const db = join(dir, "queue.db");
  if (!existsSync(db)) return { problems, queue: { seqs: new Set(), nextSeq: 1 } };
  let queue: QueueState | undefined;
  if (schemaVersion(db) === 0) {
    // Created, but its schema never committed (a crash right after the service first opened
    // it): the service migrates it at start; the read-only tools cannot read it yet (see the
    // crash suite's notes). Nothing can have been captured in it.
    queue = { seqs: new Set(), nextSeq: readSeqFile(db) + 1 };
  } else
    try {
      const reader = openQueueReader(db);
      try {
        const seqs = new Set<number>();
        for (const r of reader.export()) seqs.add(r.seq);
        queue = { seqs, nextSeq: reader.stats().nextSeq };
      } finally {
        reader.close();
      }
    } catch (error) {
      problems.push(`queue does not open read-only: ${(error as Error).message}`);
    }
  try {
    // check=true: a crash image is an unclean shutdown by definition.
    const { db: opened } = openOrQuarantine(db, silentLogger(), "crash-replay", true);
    opened.close(false);
    const aside = readdirSync(dir).filter((f) => f.includes(".corrupt-"));
    if (aside.length) problems.push(`the service's open path quarantined the queue (${aside.join(", ")})`);
  } catch (error) {
    problems.push(`the service's open path fails: ${(error as Error).message}`);
  }
  return { problems, queue };
}

export function replayAndCheck(input: ReplayInput): ReplayReport {
  const t0 = performance.now();
  const { sup, entries } = readLog(input.log);
  const events = markEvents(entries);
  const owed = new Obligations(events, input.evictable);
  const points = planCrashPoints(entries, input.plan);
  const queueFile = input.queueFile ?? "/queue.db";
  mkdirSync(input.work, { recursive: true });
  const image = join(input.work, "image");
  const crash = join(input.work, "crash.img");
  const files = join(input.work, "files");
  copyFileSync(input.base, image);
  const logFd = openSync(input.log, "r");
  const imageFd = openSync(image, "r+");
  const applier = new Applier(logFd, sup.sectorSize);
  const report: ReplayReport = {
    entries: entries.length,
    durabilityPoints: entries.filter((e) => e.flags & 3).length,
    flushPointsChecked: 0,
    samplesChecked: 0,
    marks: entries.filter((e) => e.kind === "mark").length,
    acknowledged: events.reduce((n, e) => n + (e.kind === "ack" ? e.seqs.length : 0), 0),
    failures: [],
    lost: 0,
    unopenable: 0,
    seqRegressions: 0,
    fsckFailures: 0,
    seconds: 0,
  };
  let applied = -1;
  try {
    for (const point of points) {
      while (applied < point.at) applier.apply(imageFd, entries[++applied]!);
      copyFileSync(image, crash);
      if (point.keep.length) {
        const fd = openSync(crash, "r+");
        try {
          for (const i of point.keep) applier.apply(fd, entries[i]!);
        } finally {
          closeSync(fd);
        }
      }
      const { problems, queue } = inspect(crash, files, queueFile);
      if (problems.some((p) => p.startsWith("e2fsck"))) report.fsckFailures++;
      if (!queue || problems.some((p) => p.includes("open"))) report.unopenable++;
      owed.advanceTo(point.marksUpTo);
      if (queue) {
        const missing = [...owed.owed].filter((s) => !queue.seqs.has(s)).sort((a, b) => a - b);
        const issuedHigh = owed.issuedHigh;
        if (missing.length) {
          report.lost += missing.length;
          problems.push(
            `${missing.length} acknowledged readings missing (seqs ${missing.slice(0, 12).join(",")}${missing.length > 12 ? ",…" : ""})`,
          );
        }
        if (queue.nextSeq <= issuedHigh) {
          report.seqRegressions++;
          problems.push(
            `seq would go backwards: a restart hands out ${queue.nextSeq}, but ${issuedHigh} was already acknowledged or delivered`,
          );
        }
      }
      if (point.kind === "flush") report.flushPointsChecked++;
      else report.samplesChecked++;
      if (problems.length) {
        report.failures.push({ point, phase: owed.phase, problems });
        if (report.failures.length >= (input.maxFailures ?? 50)) break;
      }
    }
  } finally {
    closeSync(imageFd);
    closeSync(logFd);
    rmSync(crash, { force: true });
    rmSync(image, { force: true });
    rmSync(files, { recursive: true, force: true });
  }
  report.seconds = Math.round((performance.now() - t0) / 100) / 10;
  return report;
}

/** One line per failing point: where (entry index, kind, phase) and what. */
export function describeFailures(r: ReplayReport, max = 10): string {
  return r.failures
    .slice(0, max)
    .map(
      (f) =>
        `entry ${f.point.at} (${f.point.kind}${f.point.kind === "sample" ? `, ${f.point.keep.length} unflushed writes kept` : ""}, phase ${f.phase}, marks ≤ ${f.point.marksUpTo}): ${f.problems.join("; ")}`,
    )
    .join("\n");
}
