import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { assembleBundle } from "../../build/bundle.ts";

let dir: string;
let repo: string;

function write(rel: string, text: string, mode = 0o644): string {
  const path = join(repo, rel);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text, { mode });
  return path;
}

function mode(path: string): number {
  return statSync(path).mode & 0o7777;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "fr-bundle-"));
  repo = join(dir, "repo");
  write("deploy/install.sh", "#!/bin/bash\n", 0o644);
  write("deploy/config.example.toml", '[device]\nid = "pi-0001"\n');
  write("deploy/systemd/fieldrelay.service", "[Service]\nType=notify\n");
  write("overlays/config.txt", "dtparam=i2c_arm=on\n");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("assembleBundle", () => {
  it("lays out the bundle install.sh reads, with executables at 0755", () => {
    const binary = write("bin/fieldrelay", "\x7fELF not really", 0o600);
    write("deploy/device/journald/fieldrelay.conf", "[Journal]\n");
    write("deploy/device/udev/60-fieldrelay.rules", "# rules\n");
    const dtbo = write("gpio.dtbo", "dtb");
    const out = join(dir, "out");
    assembleBundle({ out, binary, dtbo, root: repo, version: "fieldrelay 1.2.3 (test)" });

    expect(mode(join(out, "install.sh"))).toBe(0o755);
    expect(mode(join(out, "fieldrelay"))).toBe(0o755);
    expect(readFileSync(join(out, "fieldrelay"), "utf8")).toBe("\x7fELF not really");
    expect(readFileSync(join(out, "config.example.toml"), "utf8")).toContain('id = "pi-0001"');
    expect(readFileSync(join(out, "systemd/fieldrelay.service"), "utf8")).toContain("Type=notify");
    expect(readFileSync(join(out, "device/journald/fieldrelay.conf"), "utf8")).toBe("[Journal]\n");
    expect(readFileSync(join(out, "device/udev/60-fieldrelay.rules"), "utf8")).toBe("# rules\n");
    expect(readFileSync(join(out, "overlays/config.txt"), "utf8")).toBe("dtparam=i2c_arm=on\n");
    expect(readFileSync(join(out, "overlays/fieldrelay-gpio.dtbo"), "utf8")).toBe("dtb");
    expect(readFileSync(join(out, "VERSION"), "utf8")).toBe("fieldrelay 1.2.3 (test)\n");
  });

  it("reads VERSION from the binary's own `version` output when not given", () => {
    const binary = write(
      "bin/fieldrelay",
      '#!/bin/sh\necho "fieldrelay 9.9.9 (commit abc, target linux-x64)"\n',
      0o755,
    );
    const out = join(dir, "out");
    expect(assembleBundle({ out, binary, root: repo })).toBe(
      "fieldrelay 9.9.9 (commit abc, target linux-x64)",
    );
    expect(readFileSync(join(out, "VERSION"), "utf8")).toBe(
      "fieldrelay 9.9.9 (commit abc, target linux-x64)\n",
    );
    expect(existsSync(join(out, "overlays/fieldrelay-gpio.dtbo"))).toBe(false);
    expect(existsSync(join(out, "device"))).toBe(false);
  });

  it("replaces an earlier bundle as a whole", () => {
    const binary = write("bin/fieldrelay", "x");
    const out = join(dir, "out");
    mkdirSync(out);
    writeFileSync(join(out, "stale"), "from an older build");
    assembleBundle({ out, binary, root: repo, version: "fieldrelay 1" });
    expect(existsSync(join(out, "stale"))).toBe(false);
  });

  it("fails naming the file when the systemd unit is missing", () => {
    rmSync(join(repo, "deploy/systemd"), { recursive: true });
    const binary = write("bin/fieldrelay", "x");
    expect(() => assembleBundle({ out: join(dir, "out"), binary, root: repo, version: "v" })).toThrow(
      `the systemd unit not found at ${join(repo, "deploy/systemd/fieldrelay.service")} (it lives in deploy/systemd/)`,
    );
  });

  it("fails when a given overlay or the binary does not exist, before touching out", () => {
    const out = join(dir, "out");
    expect(() => assembleBundle({ out, binary: join(dir, "nope"), root: repo, version: "v" })).toThrow(
      /the binary not found at .*nope \(run npm run build first\)/,
    );
    const binary = write("bin/fieldrelay", "x");
    expect(() =>
      assembleBundle({ out, binary, dtbo: join(dir, "missing.dtbo"), root: repo, version: "v" }),
    ).toThrow(/the GPIO overlay not found at .*missing\.dtbo/);
    expect(existsSync(out)).toBe(false);
  });

  it("fails with a hint when the binary cannot say its version", () => {
    const binary = write("bin/fieldrelay", "#!/bin/sh\nexit 3\n", 0o755);
    expect(() => assembleBundle({ out: join(dir, "out"), binary, root: repo })).toThrow(
      /cannot run .* to read its version \(install qemu-user-static for an ARM64 binary, or pass version\)/,
    );
  });
});
