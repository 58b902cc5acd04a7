/**
 * sd_notify(3) without libsystemd: one AF_UNIX SOCK_DGRAM socket, one sendto per message, to the
 * address systemd puts in $NOTIFY_SOCKET — a filesystem path ("/run/systemd/notify") or an
 * abstract name written with a leading "@" (sent as a leading NUL byte). Without $NOTIFY_SOCKET
 * (not started by systemd, or Type= is not notify) every call is a no-op, so the runtime calls
 * the notifier unconditionally.
 *
 * Messages are newline-separated KEY=VALUE lines: READY=1, STATUS=<one line>, STOPPING=1,
 * WATCHDOG=1. $WATCHDOG_USEC (with $WATCHDOG_PID, when set, naming this process) asks for
 * WATCHDOG=1 at least that often; we offer half of it, as sd_watchdog_enabled(3) advises.
 *
 * A failed send never throws: losing systemd's socket must not stop capture. It returns false and
 * logs once per distinct error.
 */
import { FieldrelayError } from "../errors/index.ts";
import { libc } from "../hal/index.ts";
import type { Logger } from "../log/index.ts";

/** The longest sun_path: 108 bytes on Linux, including the NUL a path needs. */
const SUN_PATH_MAX = 108;

export class NotifySocketError extends FieldrelayError {}

/**
 * encodeSockaddrUn builds struct sockaddr_un for a $NOTIFY_SOCKET value: sa_family (u16, host
 * order = little-endian on the Pi and x64) then sun_path. A path is NUL-terminated; an abstract
 * address ("@name") starts with NUL and its length is exactly 2 + 1 + name bytes.
 */
export function encodeSockaddrUn(address: string): Uint8Array {
  const abstract = address.startsWith("@");
  const name = Buffer.from(abstract ? address.slice(1) : address, "utf8");
  if (!abstract && !address.startsWith("/"))
    throw new NotifySocketError(`NOTIFY_SOCKET=${address} is neither a path nor an abstract "@" address`, {
      hint: "fieldrelay supports AF_UNIX notify sockets only (not vsock:)",
      context: { env: "NOTIFY_SOCKET" },
    });
  const pathBytes = name.length + 1; // the NUL terminator, or the leading NUL of an abstract name
  if (pathBytes > SUN_PATH_MAX)
    throw new NotifySocketError(
      `NOTIFY_SOCKET is ${pathBytes} bytes, longer than sun_path (${SUN_PATH_MAX})`,
      {
        context: { env: "NOTIFY_SOCKET" },
      },
    );
  const buf = new Uint8Array(new ArrayBuffer(2 + pathBytes));
  new DataView(buf.buffer).setUint16(0, libc.AF_UNIX, true);
  buf.set(name, abstract ? 3 : 2);
  return buf;
}

export interface Notifier {
  /** True when $NOTIFY_SOCKET is set (messages go somewhere). */
  readonly enabled: boolean;
  /** Half of $WATCHDOG_USEC in ms when systemd asks for a watchdog, else undefined. */
  readonly watchdogIntervalMs: number | undefined;
  ready(status?: string): boolean;
  status(line: string): boolean;
  stopping(): boolean;
  watchdog(): boolean;
  /** Send raw KEY=VALUE lines. */
  notify(message: string): boolean;
  close(): void;
}

export interface NotifierOptions {
  log?: Logger;
  pid?: number;
}

/** watchdogIntervalMs reads $WATCHDOG_USEC/$WATCHDOG_PID: half the timeout, in ms, or undefined. */
export function watchdogIntervalMs(
  env: Record<string, string | undefined>,
  pid = process.pid,
): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID !== undefined && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return usec / 1000 / 2;
}

const oneLine = (s: string) => s.replace(/[\r\n]+/g, " ").trim();

export function createNotifier(
  env: Record<string, string | undefined> = process.env,
  { log, pid = process.pid }: NotifierOptions = {},
): Notifier {
  const address = env.NOTIFY_SOCKET;
  const interval = watchdogIntervalMs(env, pid);
  if (!address) {
    const noop = () => false;
    return {
      enabled: false,
      watchdogIntervalMs: interval,
      ready: noop,
      status: noop,
      stopping: noop,
      watchdog: noop,
      notify: noop,
      close: () => {},
    };
  }
  const sockaddr = encodeSockaddrUn(address);
  let fd: number | undefined;
  let lastError: string | undefined;

  const notify = (message: string): boolean => {
    try {
      fd ??= libc.socket(libc.AF_UNIX, libc.SOCK_DGRAM);
      libc.sendto(fd, Buffer.from(message, "utf8"), sockaddr, address);
      lastError = undefined;
      return true;
    } catch (error) {
      const text = String((error as Error).message);
      if (text !== lastError) log?.warn({ err: error, socket: address }, "sd_notify failed");
      lastError = text;
      return false;
    }
  };

  return {
    enabled: true,
    watchdogIntervalMs: interval,
    ready: (status) => notify(status ? `READY=1\nSTATUS=${oneLine(status)}` : "READY=1"),
    status: (line) => notify(`STATUS=${oneLine(line)}`),
    stopping: () => notify("STOPPING=1"),
    watchdog: () => notify("WATCHDOG=1"),
    notify,
    close() {
      if (fd !== undefined) libc.close(fd);
      fd = undefined;
    },
  };
}
