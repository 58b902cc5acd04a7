import { describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log/index.ts";
import { MIN_REPUBLISH_MS, startClockMessages } from "../../src/runtime/clock-message.ts";
import { decodeClockMessage, type WireAnchor } from "../../src/wire/index.ts";

const BOOT = "b0000000-0000-4000-8000-000000000001";
const anchor: WireAnchor = { mono_ms: 1000, wall_ms: 1_764_460_000_000, src: "ntp", err_ms: 5, ppm: 100 };

describe("Clock message publication", () => {
  it("publishes all anchors retained at QoS 1 on <prefix>/<device>/clock/<boot> when they change", async () => {
    let version = 0;
    let epoch = 0;
    let mono = 0;
    let anchors: WireAnchor[] = [];
    let connected = false;
    let failNext = false;
    const sent: Array<{ topic: string; payload: string; options: unknown }> = [];
    const p = startClockMessages({
      clock: { bootId: BOOT, anchors: () => anchors, anchorsVersion: () => version, syncEpoch: () => epoch },
      monoMs: () => mono,
      prefix: "fr",
      deviceId: "pi-7",
      connected: () => connected,
      send: async (topic, payload, options) => {
        if (failNext) {
          failNext = false;
          throw new Error("not connected");
        }
        sent.push({ topic, payload, options });
      },
      log: silentLogger(),
      checkIntervalMs: 3_600_000,
    });
    try {
      await p.check();
      expect(sent).toEqual([]); // nothing to say yet
      anchors = [anchor];
      version = 1;
      await p.check();
      expect(sent).toEqual([]); // not connected
      connected = true;
      failNext = true;
      await p.check();
      expect(sent).toEqual([]); // the send failed: retried next time
      await p.check();
      expect(sent).toHaveLength(1);
      expect(sent[0]!.topic).toBe(`fr/pi-7/clock/${BOOT}`);
      expect(sent[0]!.options).toEqual({ qos: 1, retain: true });
      expect(decodeClockMessage(sent[0]!.payload)).toEqual({
        v: 1,
        device: "pi-7",
        boot: BOOT,
        anchors: [anchor],
      });
      await p.check();
      expect(sent).toHaveLength(1); // unchanged: not sent again
      // Changed anchors without a new sync wait for MIN_REPUBLISH_MS …
      anchors = [anchor, { ...anchor, mono_ms: 601_000, wall_ms: anchor.wall_ms + 600_000, src: "rtc" }];
      version = 2;
      mono += 600_000;
      await p.check();
      expect(sent).toHaveLength(1);
      mono += MIN_REPUBLISH_MS;
      await p.check();
      expect(decodeClockMessage(sent[1]!.payload).anchors).toHaveLength(2);
      // … but a new sync goes out at once: it is what fixes readings published before it.
      version = 3;
      epoch = 1;
      mono += 1000;
      await p.check();
      expect(sent).toHaveLength(3);
    } finally {
      p.stop();
    }
  });
});
