/**
 * A fake device for clock tests: a root with proc/sys/kernel/random/boot_id, a monotonic and a
 * wall clock that tests move by hand, a sync flag, and a manual scheduler.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SyncSource, SyncState } from "../../src/clock/sync.ts";

export class FakeDevice {
  readonly root = mkdtempSync(join(tmpdir(), "fr-clock-"));
  monoNs = 5_000_000_000n;
  wall = Date.UTC(2000, 0, 1);
  sync: SyncState = { synced: false, estimatedErrorMs: undefined };
  readonly ticks: Array<() => void> = [];

  constructor(bootId = "11111111-2222-3333-4444-555555555555") {
    this.boot(bootId);
  }

  boot(bootId: string): void {
    mkdirSync(join(this.root, "proc/sys/kernel/random"), { recursive: true });
    writeFileSync(join(this.root, "proc/sys/kernel/random/boot_id"), `${bootId}\n`);
  }

  /** Move both clocks forward by ms (the wall clock as an unsynced clock would: in step). */
  advance(ms: number): void {
    this.monoNs += BigInt(Math.round(ms * 1e6));
    this.wall += ms;
  }

  readonly syncSource: SyncSource = { name: "test", read: () => this.sync };
  readonly clocks = { monoNs: () => this.monoNs, wallMs: () => this.wall };
  readonly scheduler = (fn: () => void) => {
    this.ticks.push(fn);
    return () => {
      const i = this.ticks.indexOf(fn);
      if (i >= 0) this.ticks.splice(i, 1);
    };
  };

  cleanup(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}
