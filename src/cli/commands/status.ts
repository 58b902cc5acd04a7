/**
 * `fieldrelay status`: ask the local health endpoint (health.listen) how the running service is,
 * print a short summary (or the /health JSON with --json), and exit with a code scripts can test:
 *
 *   0 healthy   1 degraded   2 unhealthy (or the endpoint answers but not with a verdict)
 *   3 not running (connection refused, or health.listen disabled so nothing can be asked)
 *   69 the token was refused   78 the config is invalid
 */
import type { Command } from "commander";
import { parseListen } from "../../config/index.ts";
import { ExitCode } from "../../errors/index.ts";
import type { HealthBody } from "../../health/index.ts";
import type { Io } from "../io.ts";
import { type ConfigOptions, loadConfigForCommand, withConfig } from "../options.ts";

export const StatusExit = { healthy: 0, degraded: 1, unhealthy: 2, notRunning: 3 } as const;

/** Where to connect for a listen host: a wildcard bind is reached on loopback. */
export function healthUrl(host: string, port: number): string {
  const target = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host;
  return `http://${target.includes(":") ? `[${target}]` : target}:${port}/health`;
}

const MARK = { ok: "✓", degraded: "!", unhealthy: "✗", unknown: "?" } as const;

export function formatUptime(s: number): string {
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : `${m}m ${s % 60}s`;
}

/** formatStatus is the human summary: the verdict, then one line per check, problems first. */
export function formatStatus(body: HealthBody): string {
  const rank = { unhealthy: 0, degraded: 1, unknown: 2, ok: 3 } as const;
  const checks = Object.entries(body.checks).sort(([, a], [, b]) => rank[a.status] - rank[b.status]);
  const width = Math.max(...checks.map(([name]) => name.length));
  return [
    `fieldrelay ${body.version}: ${body.status.toUpperCase()} (up ${formatUptime(body.uptime_s)})`,
    ...checks.map(([name, c]) => `  ${MARK[c.status]} ${name.padEnd(width)}  ${c.reason}`),
  ].join("\n");
}

export function statusCommand(program: Command, io: Io, setExit: (code: number) => void): void {
  withConfig(
    program
      .command("status")
      .description(
        "ask the running service for its health (exit 0 healthy, 1 degraded, 2 unhealthy, 3 not running)",
      )
      .option("--json", "print the /health JSON as it is")
      .option("--timeout <ms>", "how long to wait for an answer", "5000"),
  ).action(async (opts: ConfigOptions & { json?: boolean; timeout: string }) => {
    const config = loadConfigForCommand(opts.config, io, setExit);
    if (!config) return;
    const listen = parseListen(config.health.listen);
    if (!listen) {
      io.err(
        'fieldrelay: the health endpoint is disabled (health.listen = ""), so the service cannot be asked',
      );
      setExit(StatusExit.notRunning);
      return;
    }
    const url = healthUrl(listen.host, listen.port);
    const token = config.health.token;
    let res: Response;
    try {
      res = await fetch(url, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
        signal: AbortSignal.timeout(Number(opts.timeout) || 5000),
      });
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === "ECONNREFUSED" || code === "ConnectionRefused") {
        io.err(`fieldrelay: not running (nothing listens on ${url.replace(/\/health$/, "")})`);
        setExit(StatusExit.notRunning);
      } else {
        io.err(`fieldrelay: no answer from ${url}: ${(error as Error).message} — the service may be stuck`);
        setExit(StatusExit.unhealthy);
      }
      return;
    }
    if (res.status === 401) {
      io.err(
        `fieldrelay: ${url} refused the token — set health.token or FIELDRELAY_HEALTH_TOKEN to the service's token`,
      );
      setExit(ExitCode.unavailable);
      return;
    }
    if (res.status === 429) {
      io.err(
        `fieldrelay: ${url} refuses tokens from this address for ${res.headers.get("retry-after") ?? "a few"} s after too many wrong ones — wait, and check health.token or FIELDRELAY_HEALTH_TOKEN`,
      );
      setExit(ExitCode.unavailable);
      return;
    }
    let body: HealthBody;
    try {
      body = (await res.json()) as HealthBody;
      if (!["healthy", "degraded", "unhealthy"].includes(body.status)) throw new Error("no status");
    } catch {
      io.err(`fieldrelay: ${url} answered HTTP ${res.status} without a health verdict`);
      setExit(StatusExit.unhealthy);
      return;
    }
    io.out(opts.json ? JSON.stringify(body, null, 2) : formatStatus(body));
    setExit(StatusExit[body.status]);
  });
}
