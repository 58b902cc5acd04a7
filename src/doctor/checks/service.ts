/**
 * The service and what it exposes: the systemd unit (active, restarts, watchdog), the queue
 * (readable, rows), the broker (an MQTT CONNECT with the configured TLS and credentials, its
 * CONNACK explained; certificates warned 30 days ahead of expiry) and the ingest/health ports (answering when the service runs, free when not).
 */
import { X509Certificate } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import type { PeerCertificate, TLSSocket } from "node:tls";
import mqtt, { type IClientOptions } from "mqtt";
import { parseListen } from "../../config/index.ts";
// doctor connects with the same URL options as the publisher.
import { brokerOptions, loadTls } from "../../publish/index.ts";
import { openQueueReader, QueueError } from "../../queue/index.ts";
import { type ConnectSent, connackVerdict } from "../connack.ts";
import { readText, under } from "../files.ts";
import { type CheckResult, type DoctorContext, fail, ok, warn } from "../types.ts";

const DAY_MS = 86_400_000;
export const CERT_WARN_DAYS = 30;

export async function unitCheck(ctx: DoctorContext): Promise<CheckResult[]> {
  const p = await ctx.showUnit(ctx.unit, [
    "LoadState",
    "ActiveState",
    "SubState",
    "Result",
    "NRestarts",
    "WatchdogUSec",
  ]);
  if (!p)
    return [
      warn(
        "systemd.unit",
        "systemctl is not available: cannot see the service",
        "run fieldrelay under systemd (deploy/systemd/fieldrelay.service)",
      ),
    ];
  if (p.LoadState !== "loaded")
    return [
      warn(
        "systemd.unit",
        `${ctx.unit} is ${p.LoadState || "unknown"}`,
        "install it: bash install.sh from the bundle (deploy/push.sh)",
      ),
    ];
  const results: CheckResult[] = [];
  if (p.ActiveState === "failed")
    results.push(
      fail(
        "systemd.unit",
        `${ctx.unit} failed (${p.Result})`,
        `journalctl -u ${ctx.unit} -b shows why; then systemctl restart ${ctx.unit}`,
      ),
    );
  else if (p.ActiveState !== "active")
    results.push(
      warn(
        "systemd.unit",
        `${ctx.unit} is ${p.ActiveState} (${p.SubState})`,
        `systemctl enable --now ${ctx.unit}`,
      ),
    );
  else results.push(ok("systemd.unit", `${ctx.unit} is active (${p.SubState})`));
  const restarts = Number(p.NRestarts || 0);
  if (restarts > 0)
    results.push(
      warn(
        "systemd.restarts",
        `${ctx.unit} restarted ${restarts} time(s) since it was started`,
        `journalctl -u ${ctx.unit} -b for the crashes before each restart`,
      ),
    );
  else results.push(ok("systemd.restarts", "no restarts"));
  const wd = p.WatchdogUSec ?? "";
  if (wd === "" || wd === "0" || wd === "infinity")
    results.push(
      warn(
        "systemd.watchdog",
        `${ctx.unit} has no watchdog (WatchdogUSec=${wd || "unset"})`,
        "use the shipped unit (WatchdogSec=30s)",
      ),
    );
  else results.push(ok("systemd.watchdog", `watchdog ${wd}`));
  return results;
}

export function queueCheck(ctx: DoctorContext): CheckResult[] {
  if (!ctx.config) return [];
  const path = ctx.config.queue.path;
  try {
    const reader = openQueueReader(path);
    try {
      const s = reader.stats();
      return [
        ok(
          "queue",
          `${path}: ${s.rows} rows (${s.bytes} bytes) waiting, ${s.inflight} inflight, next seq ${s.nextSeq}`,
        ),
      ];
    } finally {
      reader.close();
    }
  } catch (error) {
    if (error instanceof QueueError && error.code === "db-missing")
      return [warn("queue", `${path} does not exist yet`, "fieldrelay run creates it on first start")];
    return [
      fail(
        "queue",
        `${path}: ${(error as Error).message}`,
        "check the file's owner and the data partition; keep a copy before replacing it",
      ),
    ];
  }
}

/** FLOCK holders from /proc/locks (proc(5)): inode → pid. Read-only: doctor never takes a lock. */
export function flockHolders(procLocks: string): Map<number, number> {
  const holders = new Map<number, number>();
  for (const line of procLocks.split("\n")) {
    const m = /^\d+:\s+FLOCK\s+\S+\s+WRITE\s+(\d+)\s+[0-9a-f]+:[0-9a-f]+:(\d+)\s/.exec(line);
    if (m) holders.set(Number(m[2]), Number(m[1]));
  }
  return holders;
}

/**
 * The queue's single-writer lock (`<queue.path>.lock`, flock, see src/queue/lock.ts), looked up in
 * the kernel's lock table rather than probed: a probe could make a starting service refuse.
 */
export async function queueLockCheck(ctx: DoctorContext): Promise<CheckResult[]> {
  if (!ctx.config) return [];
  const lockFile = `${ctx.config.queue.path}.lock`;
  const unit = await ctx.showUnit(ctx.unit, ["ActiveState", "MainPID"]);
  const active = unit?.ActiveState === "active";
  let inode: number;
  try {
    inode = statSync(lockFile).ino;
  } catch {
    return [
      active
        ? warn(
            "queue.lock",
            `${ctx.unit} is active but ${lockFile} does not exist`,
            "update fieldrelay: this build does not lock its queue",
          )
        : ok("queue.lock", `${lockFile} does not exist yet (no writer has run)`),
    ];
  }
  const holder = flockHolders(readText(under(ctx.root, "/proc/locks")) ?? "").get(inode);
  const mainPid = Number(unit?.MainPID ?? 0);
  if (holder === undefined)
    return [
      active
        ? fail(
            "queue.lock",
            `${ctx.unit} is active but nobody holds ${lockFile}: it is not writing the queue`,
            `journalctl -u ${ctx.unit} -b; systemctl restart ${ctx.unit}`,
          )
        : ok("queue.lock", `${lockFile} is free (no writer running)`),
    ];
  if (active && holder === mainPid) return [ok("queue.lock", `held by ${ctx.unit} (pid ${holder})`)];
  return [
    warn(
      "queue.lock",
      `${lockFile} is held by pid ${holder}${active ? `, not by ${ctx.unit} (pid ${mainPid})` : ` while ${ctx.unit} is not running`}`,
      `that is another fieldrelay run (ps -p ${holder}); stop it so the service can take the queue`,
    ),
  ];
}

function tcp(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host, port });
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    s.once("connect", () => {
      clearTimeout(t);
      resolve(s);
    });
    s.once("error", (e) => {
      clearTimeout(t);
      reject(e);
    });
  });
}

type ConnectOutcome =
  | { kind: "accepted"; peer: PeerCertificate | undefined }
  | { kind: "refused"; code: number }
  | { kind: "failed"; error: Error };

/**
 * One MQTT CONNECT as the service would send it (its URL, TLS, protocol version and credentials),
 * a clean session without a will, closed as soon as the CONNACK is in. mqtt.js reports a refusing
 * CONNACK as an error whose code is the return/reason code.
 */
function mqttConnect(options: IClientOptions, timeoutMs: number): Promise<ConnectOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const client = mqtt.connect({ ...options, reconnectPeriod: 0, connectTimeout: timeoutMs });
    const done = (outcome: ConnectOutcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.end(true);
      resolve(outcome);
    };
    const timer = setTimeout(
      () => done({ kind: "failed", error: new Error(`no CONNACK within ${timeoutMs} ms`) }),
      timeoutMs,
    );
    client.once("connect", () => {
      const stream = client.stream as Partial<TLSSocket>;
      done({ kind: "accepted", peer: stream.getPeerCertificate?.() });
    });
    client.once("error", (error) => {
      const code = (error as { code?: unknown }).code;
      if (typeof code === "number" && code > 0) done({ kind: "refused", code });
      else done({ kind: "failed", error });
    });
    client.once("close", () =>
      done({
        kind: "failed",
        error: new Error("the connection closed before a CONNACK (is it an MQTT broker?)"),
      }),
    );
  });
}

/** ok / warn / fail for a certificate's expiry, CERT_WARN_DAYS ahead. */
function expiry(id: string, what: string, validTo: string, now: number): CheckResult {
  const left = Date.parse(validTo) - now;
  const days = Math.floor(left / DAY_MS);
  if (left <= 0) return fail(id, `${what} expired on ${validTo}`, "renew it");
  if (days < CERT_WARN_DAYS)
    return warn(
      id,
      `${what} expires in ${days} day${days === 1 ? "" : "s"} (${validTo})`,
      "renew it before then",
    );
  return ok(id, `${what} valid until ${validTo}`);
}

export async function brokerCheck(ctx: DoctorContext): Promise<CheckResult[]> {
  if (!ctx.config) return [];
  const m = ctx.config.mqtt;
  const url = new URL(m.url);
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const where = `${url.protocol}//${url.host}`;
  const results: CheckResult[] = [];
  if (m.tls.cert) {
    try {
      results.push(
        expiry(
          "mqtt.client_cert",
          `client certificate ${m.tls.cert}`,
          new X509Certificate(readFileSync(m.tls.cert)).validTo,
          ctx.now(),
        ),
      );
    } catch (error) {
      results.push(
        fail(
          "mqtt.client_cert",
          `cannot read ${m.tls.cert}: ${(error as Error).message}`,
          "check mqtt.tls.cert",
        ),
      );
    }
  }
  const secure = url.protocol === "mqtts:" || url.protocol === "wss:";
  // Never the service's own client id: the broker would end the service's session for ours.
  const clientId = `${m.client_id ?? `fieldrelay-${ctx.config.device.id}`}-doctor`;
  const connect = async (protocolVersion: 4 | 5): Promise<ConnectOutcome> => {
    try {
      return await mqttConnect(
        {
          ...brokerOptions(m.url),
          ...(secure ? loadTls(m.tls) : {}),
          protocolVersion,
          clientId,
          clean: true,
          keepalive: m.keepalive_s,
          ...(m.username !== undefined && { username: m.username }),
          ...(m.password !== undefined && { password: m.password }),
        },
        ctx.timeoutMs,
      );
    } catch (error) {
      return { kind: "failed", error: error as Error };
    }
  };
  // As the publisher: the configured version, or MQTT 5 falling back once to 3.1.1 when the
  // broker refuses the version (CONNACK 1 / 0x84).
  let protocolVersion: 4 | 5 = m.protocol_version ?? 5;
  let outcome = await connect(protocolVersion);
  const fellBack =
    m.protocol_version === undefined &&
    outcome.kind === "refused" &&
    (outcome.code === 1 || outcome.code === 0x84);
  if (fellBack) {
    protocolVersion = 4;
    outcome = await connect(4);
  }
  const sent: ConnectSent = {
    protocolVersion,
    username: m.username,
    password: m.password !== undefined,
    clientId,
  };
  const who = `${m.username === undefined ? "anonymous" : `user ${m.username}`}, client id ${clientId}`;
  const version = protocolVersion === 4 ? "MQTT 3.1.1" : "MQTT 5";
  if (outcome.kind === "accepted") {
    const tls = secure
      ? ` over TLS${m.tls.insecure ? " (verification OFF: mqtt.tls.insecure)" : ", certificate verified"}`
      : "";
    const accepted = `${where} accepted an ${version} CONNECT${tls} (${who})`;
    results.push(
      fellBack
        ? warn(
            "mqtt.broker",
            `${accepted}, after refusing MQTT 5: the service falls back the same way, and under 3.1.1 the broker cannot say it refused a message`,
            "upgrade the broker to MQTT 5, or set mqtt.protocol_version = 4 to say this is intended",
          )
        : ok("mqtt.broker", accepted),
    );
    if (outcome.peer?.valid_to)
      results.push(
        expiry(
          "mqtt.broker_cert",
          `broker certificate (${outcome.peer.subject?.CN ?? host})`,
          outcome.peer.valid_to,
          ctx.now(),
        ),
      );
  } else if (outcome.kind === "refused") {
    const { reason, fix } = connackVerdict(outcome.code, sent);
    const as = m.username === undefined ? " (anonymous)" : ` as user ${m.username}`;
    results.push(fail("mqtt.broker", `${where} refused the CONNECT${as}: ${reason}`, fix));
  } else {
    const error = outcome.error;
    const code = (error as NodeJS.ErrnoException).code;
    results.push(
      fail(
        "mqtt.broker",
        `cannot reach ${where}: ${error.message}${code && !error.message.includes(code) ? ` (${code})` : ""}`,
        secure
          ? "check mqtt.url, the network, and [mqtt.tls] ca/servername against the broker's certificate"
          : "check mqtt.url and the network (readings queue meanwhile; nothing is lost)",
      ),
    );
  }
  return results;
}

export async function portsCheck(ctx: DoctorContext): Promise<CheckResult[]> {
  if (!ctx.config) return [];
  const active = (await ctx.showUnit(ctx.unit, ["ActiveState"]))?.ActiveState === "active";
  const results: CheckResult[] = [];
  for (const [key, listen] of [
    ["ingest.listen", ctx.config.ingest.listen],
    ["health.listen", ctx.config.health.listen],
  ] as const) {
    const id = `ports.${key.split(".")[0]}`;
    if (listen === "") {
      results.push(ok(id, `${key} is "" (disabled)`));
      continue;
    }
    const l = parseListen(listen);
    if (!l) continue;
    const host = l.host === "0.0.0.0" ? "127.0.0.1" : l.host === "::" ? "::1" : l.host;
    let open = false;
    try {
      (await tcp(host, l.port, ctx.timeoutMs)).destroy();
      open = true;
    } catch {}
    if (active && open) results.push(ok(id, `${listen} answers (${key})`));
    else if (active)
      results.push(
        fail(
          id,
          `${ctx.unit} is active but nothing listens on ${listen} (${key})`,
          `journalctl -u ${ctx.unit} -b: another program may hold the port`,
        ),
      );
    else if (open)
      results.push(
        fail(
          id,
          `${listen} (${key}) is taken by another program while fieldrelay is not running`,
          `stop it (ss -ltnp 'sport = :${l.port}') or change ${key}`,
        ),
      );
    else results.push(ok(id, `${listen} (${key}) is free`));
  }
  return results;
}
