import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { adjtimexSyncSource, fileSyncSource, syncSourceFromConfig } from "../../src/clock/sync.ts";
import {
  decodeTimex,
  interpretTimex,
  STA_UNSYNC,
  TIME_ERROR,
  TIMEX_OFFSET,
  TIMEX_SIZE,
} from "../../src/clock/timex.ts";
import { GCC, missing } from "../support/tools.ts";

const dir = mkdtempSync(join(tmpdir(), "fr-timex-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(missing(GCC))("struct timex layout matches <sys/timex.h>", () => {
  it("has the same size, field offsets, STA_UNSYNC and TIME_ERROR", () => {
    const src = join(dir, "timex.c");
    writeFileSync(
      src,
      `#include <stdio.h>
#include <stddef.h>
#include <sys/timex.h>
int main(void) {
  printf("{\\"size\\":%zu,\\"modes\\":%zu,\\"maxerror\\":%zu,\\"esterror\\":%zu,\\"status\\":%zu,\\"STA_UNSYNC\\":%d,\\"TIME_ERROR\\":%d}\\n",
    sizeof(struct timex), offsetof(struct timex, modes), offsetof(struct timex, maxerror),
    offsetof(struct timex, esterror), offsetof(struct timex, status), STA_UNSYNC, TIME_ERROR);
  return 0;
}
`,
    );
    execFileSync("gcc", ["-o", join(dir, "timex"), src]);
    const c = JSON.parse(execFileSync(join(dir, "timex"), { encoding: "utf8" }));
    expect(c).toEqual({
      size: TIMEX_SIZE,
      ...TIMEX_OFFSET,
      STA_UNSYNC,
      TIME_ERROR,
    });
  });
});

function timexBuffer(fields: { maxerrorUs: number; esterrorUs: number; status: number }): Uint8Array {
  const buf = new Uint8Array(new ArrayBuffer(TIMEX_SIZE));
  const v = new DataView(buf.buffer);
  v.setBigInt64(TIMEX_OFFSET.maxerror, BigInt(fields.maxerrorUs), true);
  v.setBigInt64(TIMEX_OFFSET.esterror, BigInt(fields.esterrorUs), true);
  v.setInt32(TIMEX_OFFSET.status, fields.status, true);
  return buf;
}

describe("adjtimex interpretation", () => {
  it("decodes maxerror, esterror and status from their offsets", () => {
    expect(decodeTimex(timexBuffer({ maxerrorUs: 16_000_000, esterrorUs: 1234, status: 0x2001 }))).toEqual({
      modes: 0,
      maxerrorUs: 16_000_000,
      esterrorUs: 1234,
      status: 0x2001,
    });
  });

  it("is synced only when the state is not TIME_ERROR and STA_UNSYNC is clear", () => {
    const t = (status: number) => ({ modes: 0, maxerrorUs: 5000, esterrorUs: 2500, status });
    expect(interpretTimex(0, t(0x2001))).toEqual({ synced: true, estimatedErrorMs: 2.5, maxErrorMs: 5 });
    expect(interpretTimex(TIME_ERROR, t(0x2001)).synced).toBe(false);
    expect(interpretTimex(0, t(0x2001 | STA_UNSYNC)).synced).toBe(false);
    expect(interpretTimex(1, t(0)).synced).toBe(true); // TIME_INS: a leap second pending is still synced
  });

  it("asks the kernel read-only (modes = 0) and reports its estimate only when synced", () => {
    const seen: number[] = [];
    const synced = adjtimexSyncSource((buf) => {
      seen.push(new DataView(buf.buffer, buf.byteOffset).getUint32(0, true));
      buf.set(timexBuffer({ maxerrorUs: 9000, esterrorUs: 700, status: 0 }));
      return 0;
    });
    expect(synced.read()).toEqual({ synced: true, estimatedErrorMs: 0.7 });
    expect(seen).toEqual([0]);
    const unsynced = adjtimexSyncSource((buf) => {
      buf.set(timexBuffer({ maxerrorUs: 16_000_000, esterrorUs: 16_000_000, status: STA_UNSYNC }));
      return TIME_ERROR;
    });
    expect(unsynced.read()).toEqual({ synced: false, estimatedErrorMs: undefined });
  });

  it("reads this machine's real kernel state without changing it", () => {
    const state = adjtimexSyncSource().read();
    expect(typeof state.synced).toBe("boolean");
  });
});

describe("file: sync source", () => {
  it("is synced exactly while the file exists, at the path as given (not under system.root)", () => {
    const flag = join(dir, "synchronized");
    const src = syncSourceFromConfig(`file:${flag}`);
    expect(src.name).toBe(`file:${flag}`);
    expect(src.read().synced).toBe(false);
    writeFileSync(flag, "");
    expect(src.read().synced).toBe(true);
    rmSync(flag);
    expect(src.read().synced).toBe(false);
  });

  it("takes an injected existence check", () => {
    let present = false;
    const src = fileSyncSource("/run/x", () => present);
    expect(src.read()).toEqual({ synced: false, estimatedErrorMs: undefined });
    present = true;
    expect(src.read().synced).toBe(true);
  });

  it("refuses an unknown source naming the key", () => {
    expect(() => syncSourceFromConfig("chrony")).toThrow(/clock.sync_source/);
  });
});
