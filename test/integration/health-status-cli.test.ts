import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/index.ts";
import type { Io } from "../../src/cli/io.ts";
import type { RuntimeStatus } from "../../src/runtime/status.ts";
import { run, Workspace } from "../support/fieldrelay.ts";
import { HealthServers } from "../support/health-server.ts";
import { freePort } from "../support/ports.ts";
import { fakeStatus } from "../support/runtime-status.ts";

const ws = new Workspace();
const servers = new HealthServers();
afterAll(() => ws.cleanup());

const TOKEN = "status-cli-token-0123";

const serve = (status: () => RuntimeStatus, token?: string) =>
  servers.serve(status, { token, version: "1.2.3" }).server;

const configFor = (port: number, token?: string) =>
  ws.writeConfig(
    { device: { id: "pi-1" }, health: { listen: `127.0.0.1:${port}`, ...(token ? { token } : {}) } },
    `status-${port}-${token ? "t" : "n"}.toml`,
  );

async function status(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (s) => out.push(s), err: (s) => err.push(s) };
  const code = await main(["status", ...args], io);
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

describe("fieldrelay status", () => {
  it("exits 0 and prints a summary when healthy", async () => {
    const s = serve(() => fakeStatus());
    const r = await status(["--config", configFor(s.port)]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^fieldrelay 1\.2\.3: HEALTHY \(up 1h 0m\)/);
    expect(r.stdout).toMatch(/✓ broker\s+connected/);
  });

  it("exits 1 when degraded, listing the problem first", async () => {
    const s = serve(() => fakeStatus({ publisher: { connected: false, lastError: "ECONNREFUSED" } }));
    const r = await status(["--config", configFor(s.port)]);
    expect(r.code).toBe(1);
    expect(r.stdout.split("\n")[1]).toMatch(/^ {2}! broker\s+broker unreachable: ECONNREFUSED/);
  });

  it("exits 2 when unhealthy and prints the /health JSON with --json", async () => {
    const s = serve(() => fakeStatus({ queue: { refusing: true } }));
    const r = await status(["--json", "--config", configFor(s.port)]);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({
      status: "unhealthy",
      version: "1.2.3",
      checks: { queue: { status: "unhealthy" } },
    });
  });

  it("exits 3 when nothing listens (not running)", async () => {
    const port = await freePort();
    const r = await status(["--config", configFor(port)]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`not running (nothing listens on http://127.0.0.1:${port})`);
  });

  it("sends the configured token, and says so when it is refused", async () => {
    const s = serve(() => fakeStatus(), TOKEN);
    expect((await status(["--config", configFor(s.port, TOKEN)])).code).toBe(0);
    const refused = await status(["--config", configFor(s.port, "some-other-token-456")]);
    expect(refused.code).toBe(69);
    expect(refused.stderr).toContain("refused the token");
  });

  it("says how long to wait when the service refuses this address after too many wrong tokens", async () => {
    const s = serve(() => fakeStatus(), TOKEN);
    const wrong = configFor(s.port, "some-other-token-456");
    for (let i = 0; i < 5; i++)
      expect((await status(["--config", wrong])).stderr).toContain("refused the token");
    const limited = await status(["--config", configFor(s.port, TOKEN)]);
    expect(limited.code).toBe(69);
    expect(limited.stderr).toMatch(
      /refuses tokens from this address for 1 s after too many wrong ones — wait/,
    );
  });

  it("gives the same exit code as a process", async () => {
    const s = serve(() => fakeStatus({ clock: { synced: false } }));
    const r = await run("source", ["status", "--config", configFor(s.port)]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("DEGRADED");
  });
});
