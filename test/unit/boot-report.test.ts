import { describe, expect, it } from "vitest";
import { REPORT_MARKER } from "../boot/support/guest.ts";
import { qemuAppend } from "../boot/support/qemu.ts";
import { parseReport } from "../boot/support/report.ts";

const payload = "first.ActiveState=active\nfirst.StatusText=1 sensor; a=b\nstop.Result=success\n";
const line = `${REPORT_MARKER} ${Buffer.from(payload).toString("base64")}`;

describe("Boot test report line", () => {
  it("decodes key=value lines, keeping '=' inside values", () => {
    const r = parseReport(`[  1.0] booting\n${line}\nreboot: Power down\n`);
    expect(r).toEqual({
      "first.ActiveState": "active",
      "first.StatusText": "1 sensor; a=b",
      "stop.Result": "success",
    });
  });

  it("skips a copy split by a kernel message and takes the next intact one", () => {
    const split = `${line.slice(0, 30)}[  9.1] virtio_blk: hello${line.slice(30)}`;
    expect(parseReport(`${split}\n${line}\n`)?.["stop.Result"]).toBe("success");
  });

  it("returns undefined when no complete report was printed", () => {
    expect(parseReport("kernel panic\n")).toBeUndefined();
    const truncated = `${REPORT_MARKER} ${Buffer.from("first.ActiveState=active\n").toString("base64")}`;
    expect(parseReport(truncated)).toBeUndefined();
  });
});

describe("qemu kernel command line from the image's cmdline.txt", () => {
  it("keeps the image's options, swaps console/root for qemu's and drops init=", () => {
    const append = qemuAppend(
      "console=serial0,115200 console=tty1 root=PARTUUID=1234abcd-02 rootfstype=ext4 fsck.repair=yes rootwait ro init=/usr/lib/raspberrypi-sys-mods/firstboot\n",
    ).split(" ");
    expect(append.slice(0, 2)).toEqual(["console=ttyAMA0", "root=/dev/vda2"]);
    expect(append).toContain("ro");
    expect(append).toContain("fsck.repair=yes");
    expect(append.some((w) => w.startsWith("init=") || w.startsWith("console=serial0"))).toBe(false);
  });
});
