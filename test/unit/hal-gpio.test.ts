import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  chipPaths,
  EdgeWatcher,
  GpioChip,
  GpioChipMissing,
  GpioLineNotFound,
  GpioNotAChip,
  type LineEvent,
  LineFlag,
  LineRequest,
  lineConfig,
  onoffSettings,
  resolveLine,
  SeqnoTracker,
  settingsFlags,
  unpackBits,
  workerSpecifier,
} from "../../src/hal/gpio/index.ts";
import { AttrId, GPIO_V2_LINE_EVENT_SIZE } from "../../src/hal/gpio/uapi.ts";
import { libc } from "../../src/hal/index.ts";

const root = mkdtempSync(join(tmpdir(), "fr-gpio-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
mkdirSync(join(root, "dev"));
writeFileSync(join(root, "dev", "gpiochip10"), "");
writeFileSync(join(root, "dev", "gpiochip2"), "");

const F = LineFlag;

describe("GPIO line settings → uAPI v2 line config", () => {
  it("encodes an input with pull-up, both edges and in-kernel debounce on every requested line", () => {
    const config = lineConfig({ direction: "input", bias: "pull-up", edge: "both", debounceUs: 5000 }, 2);
    expect(config).toEqual({
      flags: F.INPUT | F.BIAS_PULL_UP | F.EDGE_RISING | F.EDGE_FALLING,
      attrs: [{ id: AttrId.DEBOUNCE, debounce_us: 5000, mask: 0b11n }],
    });
  });

  it("encodes an open-drain, active-low output with its initial values", () => {
    expect(
      lineConfig({ direction: "output", drive: "open-drain", activeLow: true, outputValues: [1, 0, 1] }, 3),
    ).toEqual({
      flags: F.OUTPUT | F.OPEN_DRAIN | F.ACTIVE_LOW,
      attrs: [{ id: AttrId.OUTPUT_VALUES, values: 0b101n, mask: 0b111n }],
    });
  });

  it("refuses edge detection on an output and maps onoff's arguments (debounceTimeout in ms)", () => {
    expect(() => settingsFlags({ direction: "output", edge: "rising" })).toThrow(/needs an input/);
    expect(onoffSettings("in", "rising", { debounceTimeout: 10, activeLow: true })).toEqual({
      direction: "input",
      edge: "rising",
      bias: "as-is",
      activeLow: true,
      debounceUs: 10000,
    });
    expect(onoffSettings("high", "none", {})).toEqual({
      direction: "output",
      activeLow: false,
      outputValues: [1],
    });
    expect(unpackBits(0b1010n, 4)).toEqual([0, 1, 0, 1]);
  });
});

const event = (offset: number, line_seqno: number, seqno = line_seqno, id = 1): LineEvent => ({
  timestamp_ns: 1_000_000n * BigInt(seqno),
  id,
  offset,
  seqno,
  line_seqno,
});

describe("Edge event loss detection (seqno gaps)", () => {
  it("counts nothing lost for consecutive numbers and the gap size when the kernel skipped", () => {
    const t = new SeqnoTracker();
    expect([1, 2, 3].map((n) => t.observe(event(17, n)))).toEqual([0, 0, 0]);
    expect(t.observe(event(17, 7))).toBe(3);
    expect(t.lost).toBe(3);
  });

  it("counts events lost before the first one seen, per line, and survives the u32 wrap", () => {
    const t = new SeqnoTracker();
    expect(t.observe(event(17, 4))).toBe(3);
    expect(t.observe(event(27, 1, 5))).toBe(0);
    expect(t.observe(event(27, 2, 6))).toBe(0);
    const w = new SeqnoTracker();
    w.observe(event(5, 0xffffffff));
    expect(w.observe(event(5, 0))).toBe(0);
    expect(w.observe(event(5, 1))).toBe(0);
    expect(w.observe(event(5, 1))).toBe(0); // a repeat is not a loss
  });
});

describe("GPIO chips through the kernel (bun:ffi)", () => {
  it("lists gpiochips under root in chip-number order", () => {
    expect(chipPaths(root)).toEqual([join(root, "dev/gpiochip2"), join(root, "dev/gpiochip10")]);
    expect(chipPaths(join(root, "nowhere"))).toEqual([]);
  });

  it("names a missing chip, and a regular file answering ENOTTY as not a GPIO chip", () => {
    expect(() => GpioChip.open(join(root, "dev/gpiochip0"))).toThrow(GpioChipMissing);
    const error = (() => {
      try {
        GpioChip.open(join(root, "dev/gpiochip2"));
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(GpioNotAChip);
    expect((error as GpioNotAChip).code).toBe("ENOTTY");
  });

  it("resolves a numeric line without opening anything and a missing name to GpioLineNotFound", () => {
    expect(resolveLine(17, undefined, root)).toEqual({ chip: join(root, "dev/gpiochip0"), offset: 17 });
    expect(resolveLine("4", "gpiochip2", root)).toEqual({ chip: join(root, "dev/gpiochip2"), offset: 4 });
    const empty = mkdtempSync(join(tmpdir(), "fr-gpio-empty-"));
    expect(() => resolveLine("GPIO17", undefined, empty)).toThrow(GpioLineNotFound);
    expect(() => resolveLine("GPIO17", undefined, empty)).toThrow(
      'no GPIO line named "GPIO17" on any chip (none found)',
    );
    rmSync(empty, { recursive: true });
  });
});

function encodeEvents(events: LineEvent[]): Uint8Array {
  const out = new Uint8Array(GPIO_V2_LINE_EVENT_SIZE * events.length);
  const v = new DataView(out.buffer);
  events.forEach((e, i) => {
    const at = i * GPIO_V2_LINE_EVENT_SIZE;
    v.setBigUint64(at, e.timestamp_ns, true);
    v.setUint32(at + 8, e.id, true);
    v.setUint32(at + 12, e.offset, true);
    v.setUint32(at + 16, e.seqno, true);
    v.setUint32(at + 20, e.line_seqno, true);
  });
  return out;
}

describe("EdgeWatcher (Worker blocked in poll, woken through a pipe)", () => {
  it("finds its Worker beside events.ts from source and under the embedded src/ root in a compiled binary", () => {
    expect(workerSpecifier("file:///repo/src/hal/gpio/events.ts")).toBe(
      "file:///repo/src/hal/gpio/event-worker.ts",
    );
    expect(workerSpecifier("file:///$bunfs/root/fieldrelay-linux-arm64")).toBe("./hal/gpio/event-worker.ts");
  });

  it("delivers events written to the request fd with kernel timestamps and counts seqno gaps, then stops", async () => {
    // A pipe stands in for the line request fd: the Worker cannot tell the difference.
    const [readFd, writeFd] = libc.pipe();
    const request = new LineRequest("test-pipe", readFd, [17]);
    const received: Array<{ events: LineEvent[]; lost: number }> = [];
    let notify: () => void = () => {};
    const watcher = new EdgeWatcher(request, (events, lost) => {
      received.push({ events, lost });
      notify();
    });
    const next = () =>
      new Promise<void>((resolve) => {
        notify = resolve;
      });
    let arrived = next();
    libc.write(writeFd, encodeEvents([event(17, 1), event(17, 2, 2, 2)]));
    await arrived;
    arrived = next();
    libc.write(writeFd, encodeEvents([event(17, 6)]));
    await arrived;
    await watcher.stop();
    expect(received.flatMap((r) => r.events).map((e) => [e.line_seqno, e.id, e.timestamp_ns])).toEqual([
      [1, 1, 1_000_000n],
      [2, 2, 2_000_000n],
      [6, 1, 6_000_000n],
    ]);
    expect(received.map((r) => r.lost)).toEqual([0, 3]);
    expect(watcher.tracker.lost).toBe(3);
    request.close();
    libc.close(writeFd);
  });
});
