import { chmodSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { command, REPO, run, spawn, Workspace } from "../support/fieldrelay.ts";
import { WITHOUT_DAC_OVERRIDE } from "../support/tools.ts";

const ws = new Workspace();
afterAll(() => ws.cleanup());
const good = ws.writeConfig(
  {
    device: { id: "pi-1" },
    queue: { path: ws.queuePath },
    ingest: { listen: "" },
    health: { listen: "" },
    rtc: { mode: "none" },
  },
  "good.toml",
);

describe("fieldrelay CLI (from source)", () => {
  it("prints usage for --help and for each command's --help", async () => {
    const top = await run("source", ["--help"]);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/Usage: fieldrelay/);
    for (const cmd of ["run", "check-config", "version"]) expect(top.stdout).toContain(cmd);
    const sub = await run("source", ["check-config", "--help"]);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toMatch(/--config <path>/);
  });

  it("prints version, commit, target and Bun version", async () => {
    const r = await run("source", ["version", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      version: expect.any(String),
      commit: expect.any(String),
      target: expect.stringMatching(/^source-linux-/),
      bun: "1.4.5",
    });
  });

  it("answers an unknown command with one line on stderr and exit 64", async () => {
    const r = await run("source", ["frobnicate"]);
    expect(r.code).toBe(64);
    expect(r.stderr.trim().split("\n")).toEqual(["fieldrelay: unknown command 'frobnicate'"]);
  });

  it("answers an unknown flag with one line on stderr and exit 64", async () => {
    const r = await run("source", ["version", "--frob"]);
    expect(r.code).toBe(64);
    expect(r.stderr.trim().split("\n")).toEqual(["fieldrelay: unknown option '--frob'"]);
  });

  it("check-config prints the effective config with secrets redacted and exits 0", async () => {
    const r = await run("source", ["check-config", "--config", good], {
      env: { FIELDRELAY_MQTT_PASSWORD: "hunter2" },
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('id = "pi-1"');
    expect(r.stdout).toContain('password = "[redacted]"');
    expect(r.stdout).not.toContain("hunter2");
  });

  it("check-config lists every problem with its key path and exits 78", async () => {
    const bad = ws.writeConfig('[device]\nid = "pi/1"\n[mqtt]\nmax_inflight = 0\n', "bad.toml");
    const r = await run("source", ["check-config", "--config", bad]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain("device.id: device id must not contain");
    expect(r.stderr).toContain("mqtt.max_inflight:");
  });

  it("check-config names a missing file (exit 78)", async () => {
    const r = await run("source", ["check-config", "--config", `${ws.dir}/nope.toml`]);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/nope\.toml: not found \(ENOENT\)/);
  });

  it("check-config names an unreadable file (exit 78)", async () => {
    const secret = ws.writeConfig('[device]\nid = "a"\n', "secret.toml");
    chmodSync(ws.dir, 0o755);
    chmodSync(secret, 0o000);
    // root reads any file, so as root the check runs without CAP_DAC_OVERRIDE.
    const prefix = WITHOUT_DAC_OVERRIDE;
    const r = await runArgv([...prefix, ...command("source"), "check-config", "--config", secret]);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/secret\.toml: permission denied \(EACCES\)/);
  });

  it("run exits 0 on SIGTERM", async () => {
    const proc = spawn("source", ["run", "--config", good]);
    await proc.waitForLog((l) => l.msg === "fieldrelay ready");
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    expect(proc.logs.some((l) => l.msg === "fieldrelay stopped")).toBe(true);
  });
});

async function runArgv(argv: string[]) {
  const proc = Bun.spawn(argv, { stdout: "pipe", stderr: "pipe", cwd: REPO });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}
