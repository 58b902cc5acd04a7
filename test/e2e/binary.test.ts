import { openSync, readSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { binaryMissing, DIST, type Flavor, run, spawn, Workspace } from "../support/fieldrelay.ts";
import { AARCH64_LIBC, missing, QEMU_AARCH64 } from "../support/tools.ts";

const ws = new Workspace();
afterAll(() => ws.cleanup());

const ELF_MACHINE = { arm64: 0xb7, x64: 0x3e } as const;

for (const flavor of ["arm64", "x64"] as const satisfies Flavor[]) {
  const skip =
    binaryMissing(flavor) ?? (flavor === "arm64" ? missing(QEMU_AARCH64, AARCH64_LIBC) : undefined);

  describe.skipIf(skip)(`dist/fieldrelay-linux-${flavor}`, () => {
    it(`is a 64-bit little-endian ELF for ${flavor}`, () => {
      const header = Buffer.alloc(20);
      readSync(openSync(join(DIST, `fieldrelay-linux-${flavor}`), "r"), header, 0, 20, 0);
      expect(header.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
      expect(header[4]).toBe(2); // ELFCLASS64
      expect(header.readUInt16LE(18)).toBe(ELF_MACHINE[flavor]);
    });

    it("answers version with the stamped version, commit and target", async () => {
      const r = await run(flavor, ["version", "--json"]);
      expect(r.code).toBe(0);
      const info = JSON.parse(r.stdout);
      expect(info.target).toBe(`linux-${flavor}`);
      expect(info.bun).toBe("1.4.5");
      expect(info.version).toMatch(/^\d+\.\d+\.\d+/);
      expect(info.commit).toMatch(/^([0-9a-f]{12}(-dirty)?|unknown)$/);
    });

    it("check-config accepts a good config (exit 0) and rejects a bad one (exit 78)", async () => {
      const good = ws.writeConfig({ device: { id: "pi-e2e" } }, `good-${flavor}.toml`);
      const ok = await run(flavor, ["check-config", "-c", good]);
      expect(ok.code).toBe(0);
      expect(ok.stdout).toContain('id = "pi-e2e"');
      const bad = ws.writeConfig(
        '[device]\nid = "a#b"\n[queue]\ndurability = "sometimes"\n',
        `bad-${flavor}.toml`,
      );
      const no = await run(flavor, ["check-config", "-c", bad]);
      expect(no.code).toBe(78);
      expect(no.stderr).toContain("device.id");
      expect(no.stderr).toContain('queue.durability: must be "full" or "normal"');
    });

    it("rejects an unknown command with exit 64", async () => {
      const r = await run(flavor, ["nope"]);
      expect(r.code).toBe(64);
      expect(r.stderr.trim()).toBe("fieldrelay: unknown command 'nope'");
    });

    it("run logs JSON lines and exits 0 on SIGTERM", async () => {
      const cfg = ws.writeConfig(
        { device: { id: "pi-e2e" }, queue: { path: ws.queuePath } },
        `run-${flavor}.toml`,
      );
      const proc = spawn(flavor, ["run", "-c", cfg]);
      const started = await proc.waitForLog((l) => l.msg === "fieldrelay starting", 60_000);
      expect(started.target).toBe(`linux-${flavor}`);
      await proc.waitForLog((l) => l.msg === "fieldrelay ready", 60_000);
      proc.kill("SIGTERM");
      expect(await proc.exited).toBe(0);
    });
  });
}
