/**
 * install.sh without --root (the path a device takes), run inside a private mount namespace where
 * /etc, /usr/local/bin and /var/lib are bind mounts of temp copies, with stub systemctl, journalctl
 * and udevadm first on PATH. The stub "starts" the service by asking the installed binary for its
 * version: a binary whose version says BROKEN never becomes active, as a real one that crashes
 * before READY=1 would not.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assembleBundle } from "../../build/bundle.ts";
import { binaryMissing, DIST } from "../support/fieldrelay.ts";
import {
  execInMountNamespace,
  removeRoot,
  USER_CONFIG_TXT,
  unshareRefused,
} from "../support/install-root.ts";
import { missing, UNSHARE, USERADD } from "../support/tools.ts";

const X64 = join(DIST, "fieldrelay-linux-x64");

const SYSTEMCTL = `#!/bin/bash
# Stub systemctl: records each call; ActiveState lives in $STUB/state.
echo "systemctl $*" >>"$STUB/calls"
case "$1" in
is-enabled) [[ -e $STUB/enabled ]] ;;
enable) touch "$STUB/enabled" ;;
restart)
	if /usr/local/bin/fieldrelay version 2>/dev/null | grep -q BROKEN; then echo failed; else echo active; fi >"$STUB/state" ;;
show) cat "$STUB/state" 2>/dev/null || echo inactive ;;
*) ;;
esac
`;
const JOURNALCTL = `#!/bin/bash
echo "journalctl $*" >>"$STUB/calls"
echo "-- stub journal: fieldrelay exited before READY=1 --"
`;
const UDEVADM = `#!/bin/bash
echo "udevadm $*" >>"$STUB/calls"
`;

const skip = binaryMissing("x64") ?? missing(USERADD, UNSHARE) ?? (await unshareRefused());

describe.skipIf(skip)("install.sh on the live system (private mount namespace, stub systemctl)", () => {
  const tmp = mkdtempSync(join(tmpdir(), "fr-live-e2e-"));
  const bundle = join(tmp, "bundle");

  beforeAll(() => {
    assembleBundle({ out: bundle, binary: X64 });
  });
  afterAll(() => removeRoot(tmp));

  /** A world for one test: copies of /etc, empty /usr/local/bin and /var/lib, a boot dir, stubs. */
  function world(): string {
    const w = mkdtempSync(join(tmp, "world-"));
    cpSync("/etc", join(w, "etc"), { recursive: true, verbatimSymlinks: true });
    writeFileSync(join(w, "etc/.fr-live-test"), "");
    for (const d of ["usrlocalbin", "varlib", "boot", "stub", "bin"]) mkdirSync(join(w, d));
    writeFileSync(join(w, "boot/config.txt"), USER_CONFIG_TXT);
    writeFileSync(join(w, "bin/systemctl"), SYSTEMCTL, { mode: 0o755 });
    writeFileSync(join(w, "bin/journalctl"), JOURNALCTL, { mode: 0o755 });
    writeFileSync(join(w, "bin/udevadm"), UDEVADM, { mode: 0o755 });
    return w;
  }

  /** Run install.sh (live) inside the namespace; refuses to run unless /etc is the copy. */
  function installLive(w: string, ...args: string[]) {
    const script = [
      "set -e",
      'w="$1"; shift',
      'mount --bind "$w/etc" /etc',
      'mount --bind "$w/usrlocalbin" /usr/local/bin',
      'mount --bind "$w/varlib" /var/lib',
      '[ -e /etc/.fr-live-test ] || { echo "not in the test namespace" >&2; exit 99; }',
      "set +e",
      'STUB="$w/stub" PATH="$w/bin:$PATH" bash "$0" --boot-dir "$w/boot" --timeout 5 "$@"',
    ].join("\n");
    return execInMountNamespace(script, [join(bundle, "install.sh"), w, ...args]);
  }

  function calls(w: string): string[] {
    return readFileSync(join(w, "stub/calls"), "utf8").trim().split("\n");
  }

  it("installs, reloads systemd, enables and restarts the service, and waits for it to be active", async () => {
    const w = world();
    const r = await installLive(w);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(readFileSync(join(w, "usrlocalbin/fieldrelay")).equals(readFileSync(X64))).toBe(true);
    expect(readFileSync(join(w, "etc/passwd"), "utf8")).toMatch(
      /^fieldrelay:x:\d+:\d+:.*:\/nonexistent:\/usr\/sbin\/nologin$/m,
    );
    expect(readFileSync(join(w, "etc/systemd/system/fieldrelay.service"), "utf8")).toContain("Type=notify");
    // (Bundles with device files also add try-restart of journald/timesyncd and udevadm calls.)
    expect(calls(w).filter((c) => c.startsWith("systemctl") && !c.includes("try-restart"))).toEqual([
      "systemctl daemon-reload",
      "systemctl is-enabled --quiet fieldrelay.service",
      "systemctl enable --quiet fieldrelay.service",
      "systemctl restart --no-block fieldrelay.service",
      "systemctl show -p ActiveState --value fieldrelay.service",
    ]);
    expect(r.stdout).toMatch(/^started fieldrelay\.service: active \(ready\) with fieldrelay \d/m);
    // The real /etc was never touched.
    expect(readFileSync("/etc/passwd", "utf8")).not.toMatch(/^fieldrelay:/m);
  });

  it("rolls back to the previous binary and restarts it when the new one never becomes ready", async () => {
    const w = world();
    expect((await installLive(w)).code).toBe(0);
    // Passes check-config (it hands that to the good binary) but is not "ready" when started.
    const bad = join(tmp, "fieldrelay-broken.sh");
    writeFileSync(
      bad,
      `#!/bin/bash\nif [ "$1" = version ]; then echo "fieldrelay 0.0.0 BROKEN"; exit 0; fi\nexec ${X64} "$@"\n`,
      { mode: 0o755 },
    );
    const r = await installLive(w, "--binary", bad);
    expect(r.code).toBe(1);
    expect(readFileSync(join(w, "usrlocalbin/fieldrelay")).equals(readFileSync(X64))).toBe(true);
    expect(readFileSync(join(w, "usrlocalbin/fieldrelay.prev")).equals(readFileSync(X64))).toBe(true);
    expect(r.stdout).toContain(
      "fieldrelay.service did not become ready within 5s (ActiveState=failed); last journal lines:",
    );
    expect(r.stdout).toContain("-- stub journal: fieldrelay exited before READY=1 --");
    expect(r.stdout).toContain("rolled back /usr/local/bin/fieldrelay to the previous binary");
    expect(r.stdout).toContain("restarted fieldrelay.service with the previous binary: active");
    expect(r.stderr.trim()).toBe(
      "install.sh: fieldrelay.service failed to become ready with the new binary; rolled back to /usr/local/bin/fieldrelay.prev",
    );
    expect(calls(w).filter((c) => c.startsWith("systemctl restart"))).toHaveLength(3);
  });

  it("a second live run changes no file and leaves the active service running", async () => {
    const w = world();
    expect((await installLive(w)).code).toBe(0);
    const r = await installLive(w);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("unchanged /usr/local/bin/fieldrelay");
    expect(r.stdout).toContain("unchanged fieldrelay.service (enabled)");
    expect(r.stdout).toContain(
      "unchanged fieldrelay.service (active; nothing it uses changed, not restarted)",
    );
    expect(calls(w).filter((c) => c.startsWith("systemctl restart"))).toHaveLength(1);
    expect(r.stdout).not.toMatch(/^(installed|created|added|updated|masked|enabled)\b/m);
  });
});
