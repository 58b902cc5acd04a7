/**
 * fieldrelay doctor against prepared device roots: a healthy device (every check ok, exit 0), then
 * one fixture per problem — each breaks exactly one thing and must produce that check's line with
 * its fix and the exit code (1 warnings, 2 failures). Real files, a real TCP broker port, real
 * TLS; systemd, the kernel's sync state and statvfs are injected (the host has no Pi to ask).
 */

import { Database } from "bun:sqlite";
import { X509Certificate } from "node:crypto";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Aedes, type AuthenticateError } from "aedes";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/index.ts";
import { EmbeddedBroker } from "../../src/demo/broker.ts";
import {
  type CheckResult,
  type DoctorContext,
  formatLine,
  runDoctor,
  type Status,
} from "../../src/doctor/index.ts";
import { migrate } from "../../src/queue/schema.ts";
import { makeCerts, type TestCerts } from "../support/certs.ts";
import { run } from "../support/fieldrelay.ts";
import { MosquittoBroker } from "../support/mosquitto.ts";
import { freePort } from "../support/ports.ts";
import { MOSQUITTO, missing } from "../support/tools.ts";

interface Device {
  root: string;
  data: string;
  configPath: string;
  /** Extra TOML appended to the healthy config. */
  toml: string;
  mountinfo: string;
  unit: Record<string, string> | undefined;
  synced: boolean;
  availableBytes: number;
  now: number;
}

let broker: EmbeddedBroker;
let brokerPort = 0;
const dirs: string[] = [];

beforeAll(async () => {
  // An MQTT broker (aedes, in-process, anonymous) where the config's broker is: doctor CONNECTs.
  broker = await EmbeddedBroker.start();
  brokerPort = broker.port;
});

afterAll(async () => {
  await broker.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function write(path: string, content: string, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content, { mode });
}

const lockTable = (lockFile: string, pid: number) =>
  `1: POSIX  ADVISORY  WRITE 99 fe:00:1 0 EOF\n2: FLOCK  ADVISORY  WRITE ${pid} b3:03:${statSync(lockFile).ino} 0 EOF\n`;

const mountLine = (
  id: number,
  point: string,
  opts: string,
  type: string,
  source: string,
  superOpts: string,
) => `${id} 1 179:${id} / ${point} ${opts} shared:${id} - ${type} ${source} ${superOpts}`;

/** A healthy Pi: 4 KiB pages, ro root, data partition ext4 data=journal with a queue, active unit. */
function healthyDevice(): Device {
  const root = mkdtempSync(join(tmpdir(), "fr-doctor-root-"));
  const data = mkdtempSync(join(tmpdir(), "fr-doctor-data-"));
  dirs.push(root, data);
  const db = new Database(join(data, "queue.db"));
  migrate(db);
  db.close();
  // The service (pid 4242) holds the queue's writer lock, as the kernel's lock table says.
  writeFileSync(join(data, "queue.db.lock"), "4242\n");
  write(join(root, "proc/locks"), lockTable(join(data, "queue.db.lock"), 4242));
  write(join(root, "proc/sys/kernel/osrelease"), "6.6.51+rpt-rpi-v8\n");
  write(
    join(root, "proc/self/smaps"),
    "55d0-55d1 r--p 00000000 b3:02 1 /usr/local/bin/fieldrelay\nSize: 4 kB\nKernelPageSize:        4 kB\nMMUPageSize: 4 kB\n",
  );
  write(
    join(root, "etc/passwd"),
    "root:x:0:0:root:/root:/bin/bash\nfieldrelay:x:995:995::/var/lib/fieldrelay:/usr/sbin/nologin\n",
  );
  write(
    join(root, "etc/group"),
    "root:x:0:\nfieldrelay:x:995:\ni2c:x:998:fieldrelay\ngpio:x:997:fieldrelay\n",
  );
  return {
    root,
    data,
    configPath: join(root, "etc/fieldrelay/config.toml"),
    toml: "",
    mountinfo: [
      mountLine(21, "/", "ro,noatime", "ext4", "/dev/mmcblk0p2", "ro"),
      mountLine(25, data, "rw,noatime", "ext4", "/dev/mmcblk0p3", "rw,data=journal"),
    ].join("\n"),
    unit: {
      LoadState: "loaded",
      ActiveState: "active",
      SubState: "running",
      Result: "success",
      NRestarts: "0",
      MainPID: "4242",
      WatchdogUSec: "30s",
      User: "fieldrelay",
      SupplementaryGroups: "i2c gpio",
    },
    synced: true,
    availableBytes: 10 * 1024 ** 3,
    now: Date.now(),
  };
}

async function doctor(d: Device): Promise<{ checks: CheckResult[]; exit: number }> {
  write(join(d.root, "proc/self/mountinfo"), `${d.mountinfo}\n`);
  write(
    d.configPath,
    `[device]\nid = "pi-7"\n[mqtt]\nurl = "mqtt://127.0.0.1:${brokerPort}"\nprotocol_version = 4\n[queue]\npath = "${d.data}/queue.db"\n[ingest]\nlisten = ""\n[health]\nlisten = ""\n[rtc]\nmode = "none"\n[system]\nroot = "${d.root}"\n${d.toml}`,
  );
  let config: DoctorContext["config"];
  let configProblem: string | undefined;
  try {
    config = loadConfig({ path: d.configPath, env: {} });
  } catch (error) {
    configProblem = (error as Error).message;
  }
  return runDoctor({
    root: d.root,
    configPath: d.configPath,
    config,
    ...(configProblem ? { configProblem } : {}),
    unit: "fieldrelay.service",
    now: () => d.now,
    showUnit: async () => d.unit,
    syncState: () => ({ synced: d.synced, estimatedErrorMs: d.synced ? 5 : undefined }),
    diskSpace: () => ({ totalBytes: 2 * d.availableBytes, availableBytes: d.availableBytes }),
    timeoutMs: 1000,
  });
}

/** A healthy device with a BME280 at 0x76 configured and a plain file (mode) as /dev/i2c-1. */
function bme280OnFileNode(mode: number): Device {
  const d = healthyDevice();
  d.toml = '[[sensor]]\nname = "air"\ndriver = "bme280"\naddress = 0x76\n';
  write(join(d.root, "dev/i2c-1"), "");
  chmodSync(join(d.root, "dev/i2c-1"), mode);
  return d;
}

/** The one result with id, after checking every other result is ok (the fixture broke one thing). */
function only(result: { checks: CheckResult[] }, id: string, status: Status): CheckResult {
  const others = result.checks.filter((c) => c.id !== id && c.status !== "ok");
  expect(others.map(formatLine)).toEqual([]);
  const found = result.checks.find((c) => c.id === id);
  expect(found, `no ${id} in ${result.checks.map((c) => c.id).join(", ")}`).toBeDefined();
  expect(found?.status, found && formatLine(found)).toBe(status);
  if (status !== "ok") expect(found?.fix).toBeTruthy();
  return found as CheckResult;
}

describe("fieldrelay doctor on a healthy device", () => {
  it("reports every check ok and exits 0", async () => {
    const r = await doctor(healthyDevice());
    expect(r.checks.filter((c) => c.status !== "ok").map(formatLine)).toEqual([]);
    expect(r.exit).toBe(0);
    const ids = r.checks.map((c) => c.id);
    for (const id of [
      "kernel.page_size",
      "config",
      "storage.root_ro",
      "storage.data_journal",
      "storage.free",
      "queue",
      "time.sync",
      "systemd.unit",
      "mqtt.broker",
    ])
      expect(ids).toContain(id);
    expect(r.checks.find((c) => c.id === "mqtt.broker")?.message).toBe(
      `mqtt://127.0.0.1:${brokerPort} accepted an MQTT 3.1.1 CONNECT (anonymous, client id fieldrelay-pi-7-doctor)`,
    );
  });

  it("accepts 16 KiB pages and says where that was tested", async () => {
    const d = healthyDevice();
    write(join(d.root, "proc/self/smaps"), "KernelPageSize:       16 kB\n");
    const c = only(await doctor(d), "kernel.page_size", "ok");
    expect(c.message).toMatch(/^16 KiB pages, kernel 6\.6\.51\+rpt-rpi-v8 \(tested under emulation/);
  });
});

describe("fieldrelay doctor: one fixture per problem", () => {
  it("64 KiB pages: warn, exit 1", async () => {
    const d = healthyDevice();
    write(join(d.root, "proc/self/smaps"), "KernelPageSize:       64 kB\n");
    const r = await doctor(d);
    expect(formatLine(only(r, "kernel.page_size", "warn"))).toMatch(
      /^WARN {2}kernel\.page_size +64 KiB pages.*untested.*— fix: boot a 4 KiB or 16 KiB-page kernel/,
    );
    expect(r.exit).toBe(1);
  });

  it("no /proc under the root: page size fails, exit 2", async () => {
    const d = healthyDevice();
    rmSync(join(d.root, "proc/self/smaps"));
    const r = await doctor(d);
    expect(only(r, "kernel.page_size", "fail").message).toContain("cannot read the page size");
    expect(r.exit).toBe(2);
  });

  it("invalid config: fail naming the file and check-config, exit 2", async () => {
    const d = healthyDevice();
    d.toml = '[log]\nlevel = "loud"\n';
    const r = await doctor(d);
    const c = r.checks.find((x) => x.id === "config");
    expect(c?.status).toBe("fail");
    expect(formatLine(c as CheckResult)).toMatch(
      /^FAIL {2}config +.*config\.toml: .*— fix: .*fieldrelay check-config -c/,
    );
    expect(r.exit).toBe(2);
  });

  it("root mounted read-write: warn, exit 1", async () => {
    const d = healthyDevice();
    d.mountinfo = d.mountinfo
      .replace("/ ro,noatime", "/ rw,noatime")
      .replace("/dev/mmcblk0p2 ro", "/dev/mmcblk0p2 rw");
    const r = await doctor(d);
    expect(formatLine(only(r, "storage.root_ro", "warn"))).toMatch(
      /\/ is mounted read-write \(\/dev\/mmcblk0p2\).*— fix: /,
    );
    expect(r.exit).toBe(1);
  });

  it("data partition without data=journal: warn with the tune2fs/fstab fix, exit 1", async () => {
    const d = healthyDevice();
    d.mountinfo = d.mountinfo.replace("rw,data=journal", "rw");
    write(join(d.root, "proc/fs/ext4/mmcblk0p3/options"), "rw\nbsddf\ndata=ordered\n");
    const r = await doctor(d);
    expect(formatLine(only(r, "storage.data_journal", "warn"))).toMatch(
      /is ext4 with data=ordered, not ext4 with data=journal — fix: .*data=journal/,
    );
    expect(r.exit).toBe(1);
  });

  it("data=journal read from /proc/fs/ext4/<dev>/options when the mount line does not show it", async () => {
    const d = healthyDevice();
    d.mountinfo = d.mountinfo.replace("rw,data=journal", "rw");
    write(join(d.root, "proc/fs/ext4/mmcblk0p3/options"), "rw\ndata=journal\n");
    only(await doctor(d), "storage.data_journal", "ok");
  });

  it("data directory on the read-only root: fail, exit 2", async () => {
    const d = healthyDevice();
    d.mountinfo = mountLine(21, "/", "ro,noatime", "ext4", "/dev/mmcblk0p2", "ro");
    const r = await doctor(d);
    const c = r.checks.find((x) => x.id === "storage.data_dir");
    expect(c?.status).toBe("fail");
    expect(c?.message).toMatch(/mounted read-only: the queue cannot be written/);
    expect(r.exit).toBe(2);
  });

  it("free space below queue.min_free_disk_mb: fail, exit 2", async () => {
    const d = healthyDevice();
    d.availableBytes = 10 * 1024 * 1024;
    const r = await doctor(d);
    expect(only(r, "storage.free", "fail").message).toMatch(
      /^10 MiB free .*below queue\.min_free_disk_mb \(64\)/,
    );
    expect(r.exit).toBe(2);
  });

  it("unreadable queue database: fail, exit 2", async () => {
    const d = healthyDevice();
    write(
      join(d.data, "queue.db"),
      "this is not an SQLite database, it is a power-cut casualty\n".repeat(200),
    );
    const r = await doctor(d);
    expect(only(r, "queue", "fail").message).toContain("queue.db");
    expect(r.exit).toBe(2);
  });

  it("queue lock held by another process than the service: warn naming the pid, exit 1", async () => {
    const d = healthyDevice();
    write(join(d.root, "proc/locks"), lockTable(`${d.data}/queue.db.lock`, 777));
    const r = await doctor(d);
    expect(formatLine(only(r, "queue.lock", "warn"))).toMatch(
      /queue\.db\.lock is held by pid 777, not by fieldrelay\.service \(pid 4242\) — fix: that is another fieldrelay run \(ps -p 777\)/,
    );
    expect(r.exit).toBe(1);
  });

  it("service active but nobody holds the queue lock: fail, exit 2", async () => {
    const d = healthyDevice();
    write(join(d.root, "proc/locks"), "");
    const r = await doctor(d);
    expect(only(r, "queue.lock", "fail").message).toMatch(/is active but nobody holds .*queue\.db\.lock/);
    expect(r.exit).toBe(2);
  });

  it("I2C sensor configured but /dev/i2c-1 absent: fail with dtparam=i2c_arm=on, exit 2", async () => {
    const d = healthyDevice();
    d.toml = '[[sensor]]\nname = "air"\ndriver = "bme280"\naddress = 0x76\n';
    const r = await doctor(d);
    expect(formatLine(only(r, "i2c.bus1", "fail"))).toMatch(
      /i2c-1 does not exist: I2C bus 1 is not enabled — fix: add dtparam=i2c_arm=on/,
    );
    expect(r.exit).toBe(2);
  });

  it("I2C address owned by a kernel driver: warn explaining EBUSY, exit 1", async () => {
    const d = bme280OnFileNode(0o666);
    mkdirSync(join(d.root, "sys/bus/i2c/devices/1-0076"), { recursive: true });
    symlinkSync("../../../../bus/i2c/drivers/bmp280", join(d.root, "sys/bus/i2c/devices/1-0076/driver"));
    const r = await doctor(d);
    expect(only(r, "i2c.air", "warn").message).toMatch(
      /0x76 on bus 1 is owned by the kernel driver bmp280, so fieldrelay's direct reads get EBUSY/,
    );
    expect(r.exit).toBe(1);
  });

  it("I2C bus node that is not an i2c-dev adapter (ENOTTY): fail on the bus, not 'nothing answers', exit 2", async () => {
    const d = bme280OnFileNode(0o666);
    const r = await doctor(d);
    expect(formatLine(only(r, "i2c.bus1", "fail"))).toMatch(
      /dev\/i2c-1 is not an I2C adapter: ioctl\(I2C_FUNCS\) failed with ENOTTY — fix: load i2c-dev/,
    );
    expect(r.checks.find((c) => c.id === "i2c.air")).toBeUndefined();
    expect(r.exit).toBe(2);
  });

  it("I2C bus the service user cannot open: fail naming user, groups and mode, exit 2", async () => {
    const d = bme280OnFileNode(0o600);
    const r = await doctor(d);
    expect(formatLine(only(r, "i2c.bus1", "fail"))).toMatch(
      /mode 0600: user fieldrelay \(groups fieldrelay,i2c,gpio\) cannot open it — fix: .*60-fieldrelay\.rules/,
    );
    expect(r.exit).toBe(2);
  });

  it("rtc.mode = kernel with no kernel RTC: fail, exit 2", async () => {
    const r = await doctorWithRtc(healthyDevice(), "kernel");
    expect(formatLine(only(r, "rtc", "fail"))).toMatch(
      /rtc\.mode is kernel but .*sys\/class\/rtc has no RTC — fix: .*dtoverlay=i2c-rtc,ds3231/,
    );
    expect(r.exit).toBe(2);
  });

  it("kernel RTC drifted past rtc.max_drift_ms while NTP is synced: warn, exit 1", async () => {
    const d = healthyDevice();
    write(join(d.root, "sys/class/rtc/rtc0/name"), "rtc-ds1307 1-0068\n");
    write(join(d.root, "sys/class/rtc/rtc0/since_epoch"), `${Math.floor(d.now / 1000) - 30}\n`);
    const r = await doctorWithRtc(d, "auto");
    expect(formatLine(only(r, "rtc.drift", "warn"))).toMatch(
      /RTC is 3\d\.\d s behind the system clock, more than rtc\.max_drift_ms \(2000\) — fix: fieldrelay rtc set --from-system/,
    );
    expect(r.checks.find((c) => c.id === "rtc")?.message).toMatch(/^kernel path/);
    expect(r.exit).toBe(1);
  });

  it("GPIO sensor configured but no gpiochip: fail, exit 2", async () => {
    const d = healthyDevice();
    d.toml = '[[sensor]]\nname = "door"\ndriver = "gpio_input"\nline = "GPIO17"\n';
    const r = await doctor(d);
    expect(only(r, "gpio.chips", "fail").message).toMatch(
      /no .*\/dev\/gpiochip\* but 1 GPIO sensor\(s\) are configured/,
    );
    expect(r.exit).toBe(2);
  });

  it("gpiochip the service user cannot open: fail, exit 2", async () => {
    const d = healthyDevice();
    d.toml = '[[sensor]]\nname = "door"\ndriver = "gpio_input"\nline = 17\n';
    write(join(d.root, "dev/gpiochip0"), "");
    chmodSync(join(d.root, "dev/gpiochip0"), 0o600);
    const r = await doctor(d);
    const c = r.checks.find((x) => x.id === "gpio.access.gpiochip0");
    expect(c?.status).toBe("fail");
    expect(formatLine(c as CheckResult)).toMatch(
      /gpiochip0 is uid 0 gid 0 mode 0600: user fieldrelay .* cannot open it — fix: .*group gpio/,
    );
    expect(r.exit).toBe(2);
  });

  it("DS18B20 configured but no 1-Wire bus: fail with dtoverlay=w1-gpio, exit 2", async () => {
    const d = healthyDevice();
    d.toml = '[[sensor]]\nname = "water"\ndriver = "ds18b20"\n';
    const r = await doctor(d);
    expect(formatLine(only(r, "onewire", "fail"))).toMatch(
      /no DS18B20 under .*sys\/bus\/w1\/devices — fix: add dtoverlay=w1-gpio/,
    );
    expect(r.exit).toBe(2);
  });

  it("system clock not synchronised: warn, exit 1", async () => {
    const d = healthyDevice();
    d.synced = false;
    const r = await doctor(d);
    expect(formatLine(only(r, "time.sync", "warn"))).toMatch(
      /system clock not synchronised \(adjtimex\).*— fix: enable systemd-timesyncd or chrony/,
    );
    expect(r.exit).toBe(1);
  });

  it("unit failed: fail with journalctl, exit 2", async () => {
    const d = healthyDevice();
    d.unit = { ...d.unit, ActiveState: "failed", SubState: "failed", Result: "watchdog", MainPID: "0" };
    write(join(d.root, "proc/locks"), ""); // the failed service's lock went with its process
    const r = await doctor(d);
    expect(formatLine(only(r, "systemd.unit", "fail"))).toMatch(
      /fieldrelay\.service failed \(watchdog\) — fix: journalctl -u fieldrelay\.service/,
    );
    expect(r.exit).toBe(2);
  });

  it("unit restarted: warn with the restart count, exit 1", async () => {
    const d = healthyDevice();
    d.unit = { ...d.unit, NRestarts: "3" };
    const r = await doctor(d);
    expect(only(r, "systemd.restarts", "warn").message).toBe(
      "fieldrelay.service restarted 3 time(s) since it was started",
    );
    expect(r.exit).toBe(1);
  });

  it("unit without a watchdog: warn, exit 1", async () => {
    const d = healthyDevice();
    d.unit = { ...d.unit, WatchdogUSec: "0" };
    const r = await doctor(d);
    only(r, "systemd.watchdog", "warn");
    expect(r.exit).toBe(1);
  });

  it("broker unreachable: fail naming the URL, exit 2", async () => {
    const d = healthyDevice();
    const port = await freePort();
    d.toml = "";
    const r = await doctorAt(d, `mqtt://127.0.0.1:${port}`);
    expect(formatLine(only(r, "mqtt.broker", "fail"))).toMatch(
      new RegExp(`cannot reach mqtt://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.*— fix: check mqtt\\.url`),
    );
    expect(r.exit).toBe(2);
  });

  it("service active but nothing listens on the health port: fail, exit 2", async () => {
    const d = healthyDevice();
    const port = await freePort();
    d.toml = "";
    const r = await doctorWith(d, (cfg) =>
      cfg.replace('[health]\nlisten = ""', `[health]\nlisten = "127.0.0.1:${port}"`),
    );
    expect(only(r, "ports.health", "fail").message).toBe(
      `fieldrelay.service is active but nothing listens on 127.0.0.1:${port} (health.listen)`,
    );
    expect(r.exit).toBe(2);
  });
});

const tlsSkip = missing({ cmd: "mosquitto", pkg: "mosquitto" }, { cmd: "openssl", pkg: "openssl" });

describe.skipIf(tlsSkip !== undefined)("fieldrelay doctor: TLS broker", () => {
  let certs: TestCerts;
  let tls: MosquittoBroker;
  beforeAll(async () => {
    certs = makeCerts();
    tls = await MosquittoBroker.start({
      tls: { ca: certs.ca, cert: certs.serverCert, key: certs.serverKey },
    });
  });
  afterAll(async () => {
    await tls?.close();
    certs?.remove();
  });

  it("a verified handshake is ok; a broker certificate 10 days from expiry warns, exit 1", async () => {
    const d = healthyDevice();
    d.toml = `[mqtt.tls]\nca = "${certs.ca}"\n`;
    const validTo = Date.parse(new X509Certificate(readFileSync(certs.serverCert)).validTo);
    d.now = validTo - 60 * 86_400_000; // the test certificate lives two days: look from far before
    const good = await doctorAt(d, tls.tlsUrl);
    expect(only(good, "mqtt.broker", "ok").message).toContain("certificate verified");
    d.now = validTo - 10 * 86_400_000;
    const r = await doctorAt(d, tls.tlsUrl);
    expect(formatLine(only(r, "mqtt.broker_cert", "warn"))).toMatch(
      /broker certificate \(.*\) expires in (9|10) days .*— fix: renew it/,
    );
    expect(r.exit).toBe(1);
  });

  it("the wrong CA: the handshake fails, exit 2", async () => {
    const d = healthyDevice();
    d.toml = `[mqtt.tls]\nca = "${certs.otherCa}"\n`;
    const r = await doctorAt(d, tls.tlsUrl);
    expect(formatLine(only(r, "mqtt.broker", "fail"))).toMatch(
      /cannot reach mqtts:\/\/127\.0\.0\.1:\d+: .*— fix: check mqtt\.url, the network, and \[mqtt\.tls\]/,
    );
    expect(r.exit).toBe(2);
  });
});

/** aedes answering every CONNECT with one return code, as a broker whose auth backend says so. */
async function refusingBroker(returnCode: 2 | 3 | 4 | 5) {
  const aedes = await Aedes.createBroker({
    authenticate: (_client, _user, _password, done) =>
      done(Object.assign(new Error("refused"), { returnCode }) as AuthenticateError, false),
  });
  const server = createServer((socket) => aedes.handle(socket));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `mqtt://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    },
  };
}

describe("fieldrelay doctor: the broker's CONNACK", () => {
  it("protocol_version unset and a broker without MQTT 5 (aedes): warn that it falls back to 3.1.1, as the service does", async () => {
    const d = healthyDevice();
    d.toml = "";
    const r = await doctorWith(d, (cfg) => cfg.replace("protocol_version = 4\n", ""));
    expect(formatLine(only(r, "mqtt.broker", "warn"))).toMatch(
      /accepted an MQTT 3\.1\.1 CONNECT \(anonymous, client id fieldrelay-pi-7-doctor\), after refusing MQTT 5: .* — fix: upgrade the broker to MQTT 5, or set mqtt\.protocol_version = 4/,
    );
    expect(r.exit).toBe(1);
  });

  it("server unavailable (3): fail saying the broker is up but not serving, with where to look", async () => {
    const b = await refusingBroker(3);
    try {
      const r = await doctorAt(healthyDevice(), b.url);
      expect(formatLine(only(r, "mqtt.broker", "fail"))).toMatch(
        /refused the CONNECT \(anonymous\): server unavailable \(CONNACK 3\).*— fix: the broker runs but cannot serve clients now: look at its log/,
      );
      expect(r.exit).toBe(2);
    } finally {
      await b.close();
    }
  });

  it("bad user name or password (4): fail naming the user and the password variable", async () => {
    const b = await refusingBroker(4);
    try {
      const d = healthyDevice();
      d.toml = "";
      const r = await doctorWith(
        d,
        (cfg) =>
          cfg.replace(/url = "mqtt:\/\/127\.0\.0\.1:\d+"/, `url = "${b.url}"\nusername = "fieldrelay"`),
        { FIELDRELAY_MQTT_PASSWORD: "not-the-password" },
      );
      expect(formatLine(only(r, "mqtt.broker", "fail"))).toMatch(
        /refused the CONNECT as user fieldrelay: bad user name or password \(CONNACK 4\) — fix: check mqtt\.username and FIELDRELAY_MQTT_PASSWORD/,
      );
    } finally {
      await b.close();
    }
  });
});

describe.skipIf(missing(MOSQUITTO) !== undefined)("fieldrelay doctor: mosquitto with a password file", () => {
  let mosquitto: MosquittoBroker;
  let dir: string;
  const PASSWORD = "doctor-pw-77x";
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fr-doctor-pw-"));
    dirs.push(dir);
    const file = join(dir, "passwords");
    const made = Bun.spawnSync(["mosquitto_passwd", "-b", "-c", file, "fieldrelay", PASSWORD]);
    expect(made.exitCode, made.stderr.toString()).toBe(0);
    chmodSync(dir, 0o755);
    chmodSync(file, 0o644); // mosquitto started as root drops to its own user
    mosquitto = await MosquittoBroker.start({ extra: ["allow_anonymous false", `password_file ${file}`] });
  });
  afterAll(async () => {
    await mosquitto?.close();
  });

  const withUser = (d: Device, user: string | undefined, version = 4) =>
    doctorWith(
      d,
      (cfg) =>
        cfg
          .replace(
            /url = "mqtt:\/\/127\.0\.0\.1:\d+"/,
            `url = "${mosquitto.url}"${user ? `\nusername = "${user}"` : ""}`,
          )
          .replace("protocol_version = 4", `protocol_version = ${version}`),
      user === undefined ? {} : { FIELDRELAY_MQTT_PASSWORD: user === "fieldrelay" ? PASSWORD : "wrong-pw" },
    );

  it("the configured user and password: ok, naming the user", async () => {
    const r = await withUser(healthyDevice(), "fieldrelay");
    expect(only(r, "mqtt.broker", "ok").message).toMatch(
      /accepted an MQTT 3\.1\.1 CONNECT \(user fieldrelay, client id fieldrelay-pi-7-doctor/,
    );
    expect(r.exit).toBe(0);
  });

  it("no user configured: not authorised, and the fix says the broker takes no anonymous clients", async () => {
    const r = await withUser(healthyDevice(), undefined);
    expect(formatLine(only(r, "mqtt.broker", "fail"))).toMatch(
      /refused the CONNECT \(anonymous\): not authorised \(CONNACK 5\) — fix: the broker takes no anonymous clients: set mqtt\.username and FIELDRELAY_MQTT_PASSWORD/,
    );
    expect(r.exit).toBe(2);
  });

  it("a wrong password, MQTT 3.1.1 and MQTT 5: not authorised, with the password file in the fix", async () => {
    const d = healthyDevice();
    d.toml = "";
    for (const [version, code] of [
      [4, "5"],
      [5, "0x87"],
    ] as const) {
      const r = await withUser(d, "someone", version);
      expect(formatLine(only(r, "mqtt.broker", "fail"))).toMatch(
        new RegExp(
          `refused the CONNECT as user someone: not authorised \\(CONNACK ${code}\\) — fix: check mqtt\\.username and FIELDRELAY_MQTT_PASSWORD against the broker's password file`,
        ),
      );
    }
  });

  it("a user but no password in this environment: the fix says where the service keeps it", async () => {
    const d = healthyDevice();
    d.toml = "";
    const r = await doctorWith(d, (cfg) =>
      cfg.replace(/url = "mqtt:\/\/127\.0\.0\.1:\d+"/, `url = "${mosquitto.url}"\nusername = "fieldrelay"`),
    );
    expect(formatLine(only(r, "mqtt.broker", "fail"))).toMatch(
      /not authorised \(CONNACK 5\) — fix: FIELDRELAY_MQTT_PASSWORD is not set here: run doctor as root \(it reads \/etc\/fieldrelay\/env like the service\) or export it/,
    );
  });
});

describe("fieldrelay doctor command line", () => {
  it("prints one line per check and a summary, exit 2 when a check fails; --json carries the same", async () => {
    const d = healthyDevice();
    d.toml = '[[sensor]]\nname = "water"\ndriver = "ds18b20"\n';
    await doctor(d); // writes the config and mountinfo
    const text = await run("source", ["doctor", "-c", d.configPath]);
    expect(text.code, text.stderr).toBe(2);
    const lines = text.stdout.trim().split("\n");
    expect(lines.find((l) => l.startsWith("FAIL  onewire"))).toMatch(/— fix: add dtoverlay=w1-gpio/);
    expect(lines.find((l) => l.startsWith("ok    storage.data_journal"))).toBeDefined();
    expect(lines.at(-1)).toMatch(/^doctor: \d+ ok, \d+ warnings, \d+ failures \(exit 2\)$/);
    const json = await run("source", ["doctor", "-c", d.configPath, "--json"]);
    expect(json.code).toBe(2);
    const parsed = JSON.parse(json.stdout) as { checks: CheckResult[]; exit: number };
    expect(parsed.exit).toBe(2);
    expect(parsed.checks.find((c) => c.id === "onewire")?.status).toBe("fail");
  });

  it("a config that does not parse is a FAIL line, not a stack trace", async () => {
    const d = healthyDevice();
    write(d.configPath, "[device\nid = \n");
    const r = await run("source", ["doctor", "-c", d.configPath]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/^FAIL {2}config +.*config\.toml: /m);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

async function doctorWith(
  d: Device,
  edit: (toml: string) => string,
  env: Record<string, string> = {},
): Promise<{ checks: CheckResult[]; exit: number }> {
  await doctor(d); // writes the base config and mountinfo
  write(d.configPath, edit(readFileSync(d.configPath, "utf8")));
  const config = loadConfig({ path: d.configPath, env });
  return runDoctor({
    root: d.root,
    configPath: d.configPath,
    config,
    unit: "fieldrelay.service",
    now: () => d.now,
    showUnit: async () => d.unit,
    syncState: () => ({ synced: d.synced, estimatedErrorMs: d.synced ? 5 : undefined }),
    diskSpace: () => ({ totalBytes: 2 * d.availableBytes, availableBytes: d.availableBytes }),
    timeoutMs: 1000,
  });
}

const doctorAt = (d: Device, url: string) =>
  doctorWith(d, (cfg) => cfg.replace(/url = "mqtt:\/\/127\.0\.0\.1:\d+"/, `url = "${url}"`));

const doctorWithRtc = (d: Device, mode: string) =>
  doctorWith(d, (cfg) => cfg.replace('[rtc]\nmode = "none"', `[rtc]\nmode = "${mode}"`));
