/**
 * SyncSource answers "is the system clock synchronised, and how well?". The kernel's adjtimex
 * state is the default; `clock.sync_source = "file:<path>"` uses the existence of a file instead
 * (e.g. systemd-timesyncd's /run/systemd/timesync/synchronized). A file: path is the user's path
 * and is used as given, not under system.root. Tests drive the clock with their own SyncSource.
 */
import { existsSync } from "node:fs";
import { FieldrelayError } from "../errors/index.ts";
import { adjtimex } from "../hal/libc/index.ts";
import { decodeTimex, encodeTimexQuery, interpretTimex } from "./timex.ts";

export interface SyncState {
  synced: boolean;
  /** How far the system clock may be off, ms; undefined when the source cannot say. */
  estimatedErrorMs: number | undefined;
}

export interface SyncSource {
  /** What the source is, for logs and status ("adjtimex", "file:/run/…"). */
  readonly name: string;
  /** Read the current state; cheap enough to call for every reading. */
  read(): SyncState;
}

/** The uncertainty assumed for a file-signalled sync, which carries no error estimate. */
export const FILE_SYNC_UNCERTAINTY_MS = 100;

/** The kernel's view through adjtimex(2) with modes = 0 (reads, never changes the clock). */
export function adjtimexSyncSource(call: (timex: Uint8Array) => number = adjtimex): SyncSource {
  return {
    name: "adjtimex",
    read() {
      const buf = encodeTimexQuery();
      const state = call(buf);
      const k = interpretTimex(state, decodeTimex(buf));
      return { synced: k.synced, estimatedErrorMs: k.synced ? k.estimatedErrorMs : undefined };
    },
  };
}

/** Synced while `path` exists. */
export function fileSyncSource(path: string, exists: (p: string) => boolean = existsSync): SyncSource {
  return {
    name: `file:${path}`,
    read: () => ({
      synced: exists(path),
      estimatedErrorMs: exists(path) ? FILE_SYNC_UNCERTAINTY_MS : undefined,
    }),
  };
}

/** The source named by config clock.sync_source. */
export function syncSourceFromConfig(spec: string): SyncSource {
  if (spec === "adjtimex") return adjtimexSyncSource();
  if (spec.startsWith("file:") && spec.length > 5) return fileSyncSource(spec.slice(5));
  throw new FieldrelayError(`clock.sync_source: unknown source "${spec}"`, {
    hint: 'use "adjtimex" or "file:<path>"',
    context: { key: "clock.sync_source" },
  });
}
