import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { pageSizeKiB } from "../../src/doctor/checks/kernel.ts";
import { flockHolders } from "../../src/doctor/checks/service.ts";
import { exitFor, formatLine, parseEnvironmentFile, serviceEnvironment } from "../../src/doctor/index.ts";
import { isReadOnly, mountOf, parseMountinfo } from "../../src/doctor/mountinfo.ts";

const MOUNTINFO = `22 1 179:2 / / ro,noatime shared:1 - ext4 /dev/mmcblk0p2 ro
23 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw,size=4k
30 22 179:3 / /var/lib/fieldrelay rw,noatime shared:9 - ext4 /dev/mmcblk0p3 rw,data=journal
31 22 0:30 / /var/lib/fieldrelay\\040old rw shared:10 - tmpfs tmpfs rw
`;

describe("doctor: /proc/self/mountinfo", () => {
  const mounts = parseMountinfo(MOUNTINFO);

  it("parses mount point, options, type, source and super options", () => {
    expect(mounts[2]).toEqual({
      mountPoint: "/var/lib/fieldrelay",
      options: ["rw", "noatime"],
      fsType: "ext4",
      source: "/dev/mmcblk0p3",
      superOptions: ["rw", "data=journal"],
    });
    expect(mounts[3]?.mountPoint).toBe("/var/lib/fieldrelay old");
  });

  it("finds the mount holding a path by the longest mount point, not a name prefix", () => {
    expect(mountOf(mounts, "/var/lib/fieldrelay")?.source).toBe("/dev/mmcblk0p3");
    expect(mountOf(mounts, "/var/lib/fieldrelay/sub")?.source).toBe("/dev/mmcblk0p3");
    expect(mountOf(mounts, "/var/lib/fieldrelayx")?.source).toBe("/dev/mmcblk0p2");
    expect(isReadOnly(mountOf(mounts, "/etc")!)).toBe(true);
  });
});

describe("doctor: results", () => {
  it("reads the kernel's page size from smaps", () => {
    expect(pageSizeKiB("00400000-00452000 r-xp\nSize: 328 kB\nKernelPageSize:       16 kB\n")).toBe(16);
    expect(pageSizeKiB("nothing")).toBeUndefined();
  });

  it("reads flock writers from /proc/locks by inode, ignoring POSIX locks", () => {
    const table =
      "1: FLOCK  ADVISORY  WRITE 19635 07:00:12 0 EOF\n2: POSIX  ADVISORY  WRITE 3102 fe:00:2187489 1073741824 1073742335\n3: FLOCK  ADVISORY  READ 5 fe:00:9 0 EOF\n";
    expect([...flockHolders(table)]).toEqual([[12, 19635]]);
  });

  it("exits 0 when all ok, 1 with a warning, 2 with a failure", () => {
    const r = (status: "ok" | "warn" | "fail") => ({ id: "x", status, message: "m" });
    expect(exitFor([r("ok"), r("ok")])).toBe(0);
    expect(exitFor([r("ok"), r("warn")])).toBe(1);
    expect(exitFor([r("warn"), r("fail"), r("ok")])).toBe(2);
  });

  it("prints one line: status, id, message and the fix", () => {
    expect(formatLine({ id: "time.sync", status: "warn", message: "not synced", fix: "enable chrony" })).toBe(
      "WARN  time.sync            not synced — fix: enable chrony",
    );
    expect(formatLine({ id: "config", status: "ok", message: "valid" })).toBe(
      "ok    config               valid",
    );
  });
});

describe("doctor: the service's EnvironmentFile", () => {
  it("takes FIELDRELAY_* assignments, unquoted or quoted, and skips comments and other variables", () => {
    expect(
      parseEnvironmentFile(
        "# secrets\nFIELDRELAY_MQTT_PASSWORD=\"p w\"\n; other comment\nFIELDRELAY_HEALTH_TOKEN=abc\nPATH=/bin\nFIELDRELAY_INGEST_TOKEN = 'x=y'\n",
      ),
    ).toEqual({
      FIELDRELAY_MQTT_PASSWORD: "p w",
      FIELDRELAY_HEALTH_TOKEN: "abc",
      FIELDRELAY_INGEST_TOKEN: "x=y",
    });
  });

  it("lays the file under the caller's own variables, and is skipped when unreadable", () => {
    const dir = mkdtempSync(join(tmpdir(), "fr-envfile-"));
    try {
      const file = join(dir, "env");
      writeFileSync(file, "FIELDRELAY_MQTT_PASSWORD=from-file\nFIELDRELAY_HEALTH_TOKEN=file-token\n");
      expect(serviceEnvironment({ FIELDRELAY_HEALTH_TOKEN: "mine" }, file)).toEqual({
        FIELDRELAY_MQTT_PASSWORD: "from-file",
        FIELDRELAY_HEALTH_TOKEN: "mine",
      });
      expect(serviceEnvironment({ A: "1" }, join(dir, "missing"))).toEqual({ A: "1" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
