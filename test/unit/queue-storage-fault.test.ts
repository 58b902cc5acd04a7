import { describe, expect, it } from "vitest";
import { describeStorageFault, isStorageFault, mountOf } from "../../src/queue/storage-fault.ts";

const MOUNTINFO = [
  "22 1 179:2 / / ro,noatime shared:1 - ext4 /dev/mmcblk0p2 ro",
  "30 22 0:25 / /var/lib ro,nosuid shared:5 - tmpfs tmpfs rw,size=1024k",
  "31 30 179:3 / /var/lib/fieldrelay rw,noatime shared:7 - ext4 /dev/mmcblk0p3 ro,data=journal",
  "32 22 179:4 / /srv/a\\040b rw,relatime shared:8 - ext4 /dev/sda1 rw",
].join("\n");

function sqliteError(code: string): Error {
  const e = new Error("disk I/O error") as Error & { code: string };
  e.name = "SQLiteError";
  e.code = code;
  return e;
}

describe("Storage faults", () => {
  it("are SQLite's I/O and read-only errors and the kernel's EIO/EROFS, not corruption or a full disk", () => {
    expect(isStorageFault(sqliteError("SQLITE_IOERR_WRITE"))).toBe(true);
    expect(isStorageFault(sqliteError("SQLITE_READONLY"))).toBe(true);
    expect(isStorageFault(sqliteError("SQLITE_CORRUPT"))).toBe(false);
    expect(isStorageFault(sqliteError("SQLITE_FULL"))).toBe(false);
    expect(isStorageFault(Object.assign(new Error("x"), { code: "EROFS" }))).toBe(true);
    expect(isStorageFault(Object.assign(new Error("x"), { code: "ENOENT" }))).toBe(false);
    expect(isStorageFault("EIO")).toBe(false);
  });

  it("finds the deepest mount holding the queue, with its device and whether it is read-only now", () => {
    expect(mountOf("/var/lib/fieldrelay", MOUNTINFO)).toEqual({
      source: "/dev/mmcblk0p3",
      device: "179:3",
      fstype: "ext4",
      mountPoint: "/var/lib/fieldrelay",
      readOnly: true, // the super options say ro: ext4 turned it read-only after an error
    });
    expect(mountOf("/var/lib/fieldrelay2", MOUNTINFO)?.mountPoint).toBe("/var/lib");
    expect(mountOf("/srv/a b/q", MOUNTINFO)).toMatchObject({ source: "/dev/sda1", readOnly: false });
    expect(mountOf("/x", "")).toBeUndefined();
  });

  it("describes a fault in one line: file, device, mount, error and what to do", () => {
    const line = describeStorageFault(
      "/var/lib/fieldrelay/queue.db",
      sqliteError("SQLITE_IOERR_WRITE"),
      MOUNTINFO,
    );
    expect(line).toMatch(
      /^storage fault on \/var\/lib\/fieldrelay\/queue\.db \(\/dev\/mmcblk0p3 179:3 ext4 on \/var\/lib\/fieldrelay, mounted read-only now\): SQLITE_IOERR_WRITE: disk I\/O error — .*dmesg/,
    );
    expect(line).not.toContain("\n");
  });
});
