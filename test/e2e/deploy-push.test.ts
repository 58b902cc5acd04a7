import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assembleBundle } from "../../build/bundle.ts";
import { binaryMissing, DIST, REPO } from "../support/fieldrelay.ts";
import { exec, prepareRoot, removeRoot } from "../support/install-root.ts";
import { SCP, SSH, SSH_KEYGEN, SSHD, Sshd } from "../support/sshd.ts";
import { missing, USERADD } from "../support/tools.ts";

const X64 = join(DIST, "fieldrelay-linux-x64");
const PUSH = join(REPO, "deploy/push.sh");

const skip =
  binaryMissing("x64") ??
  missing(SSHD, SSH, SCP, SSH_KEYGEN, USERADD) ??
  (process.getuid?.() === 0 ? undefined : "push.sh logs in as root: run the suite as root");

/** The temp dirs push.sh makes on the "device" (here the same machine). */
function pushDirs(): string[] {
  return readdirSync("/tmp").filter((n) => n.startsWith("fieldrelay-push."));
}

describe.skipIf(skip)("push.sh against a real sshd on loopback", () => {
  let sshd: Sshd;
  const tmp = mkdtempSync(join(tmpdir(), "fr-push-e2e-"));
  const bundle = join(tmp, "bundle");
  const roots: string[] = [];

  beforeAll(async () => {
    sshd = await Sshd.start();
    assembleBundle({ out: bundle, binary: X64 });
  });
  afterAll(async () => {
    await sshd?.stop();
    for (const r of roots) removeRoot(r);
    removeRoot(tmp);
  });

  function push(bundleDir: string, ...installArgs: string[]) {
    return exec([
      "bash",
      PUSH,
      "root@127.0.0.1",
      "--port",
      String(sshd.port),
      "--identity",
      sshd.clientKey,
      "--bundle",
      bundleDir,
      ...sshd.clientOptions.filter((o) => o !== "-o").flatMap((o) => ["--ssh-option", o]),
      "--",
      ...installArgs,
    ]);
  }

  it("copies the bundle, runs install.sh --root there, reports, and removes its temp dir", async () => {
    const root = prepareRoot();
    roots.push(root);
    const before = pushDirs();
    const r = await push(bundle, "--root", root);
    expect(r.code, `${r.stdout}\n${r.stderr}\n${sshd.output}`).toBe(0);
    expect(readFileSync(join(root, "usr/local/bin/fieldrelay")).equals(readFileSync(X64))).toBe(true);
    expect(readFileSync(join(root, "etc/fieldrelay/config.toml"), "utf8")).toBe(
      readFileSync(join(bundle, "config.example.toml"), "utf8"),
    );
    expect(r.stdout).toMatch(/^push\.sh: copying .* to root@127\.0\.0\.1:\/tmp\/fieldrelay-push\.\w+$/m);
    expect(r.stdout).toContain("installed /usr/local/bin/fieldrelay (fieldrelay ");
    expect(r.stdout).toContain("checked /etc/fieldrelay/config.toml with the new binary");
    expect(r.stdout).toContain("push.sh: install.sh succeeded on root@127.0.0.1");
    // --root: no systemctl status (there is no service to ask about).
    expect(r.stdout).not.toContain("fieldrelay.service -");
    expect(pushDirs()).toEqual(before);
  });

  it("exits with the installer's status when the pushed binary is broken, and the old binary stays", async () => {
    const root = prepareRoot();
    roots.push(root);
    expect((await push(bundle, "--root", root)).code).toBe(0);
    // A bundle whose binary was cut short, as an interrupted copy leaves it.
    const broken = join(tmp, "bundle-broken");
    const truncated = join(tmp, "fieldrelay-truncated");
    writeFileSync(truncated, readFileSync(X64).subarray(0, 20_000_000), { mode: 0o755 });
    assembleBundle({ out: broken, binary: truncated, version: "fieldrelay broken" });
    const before = pushDirs();
    const r = await push(broken, "--root", root);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("install.sh: the new binary failed to run check-config");
    expect(r.stderr).toContain("push.sh: install.sh failed on root@127.0.0.1 (exit 1)");
    expect(readFileSync(join(root, "usr/local/bin/fieldrelay")).equals(readFileSync(X64))).toBe(true);
    expect(pushDirs()).toEqual(before);
  });

  it("fails with one clear line when the device cannot be reached", async () => {
    const r = await exec([
      "bash",
      PUSH,
      "root@127.0.0.1",
      "--port",
      "1",
      "--identity",
      sshd.clientKey,
      "--bundle",
      bundle,
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n").at(-1)).toBe("push.sh: cannot reach root@127.0.0.1 over ssh");
  });

  it("refuses a directory that is not a bundle before connecting", async () => {
    const r = await exec(["bash", PUSH, "root@127.0.0.1", "--bundle", tmp]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      `push.sh: ${tmp} is not a bundle (no install.sh or fieldrelay in it); run npm run build or pass --bundle DIR`,
    );
  });
});
