/**
 * Boots an image under qemu-system-aarch64 and collects the serial console. Machines:
 *   - virt + cortex-a53 (default, like a Pi 3/Zero 2), a virtio disk, no network;
 *   - virt + cortex-a76 (the Pi 5's core; the only one of QEMU 7.2's models that runs a 16 KiB-page
 *     kernel: with a53/a72 the kernel hangs silently), optionally with user networking so the guest
 *     reaches a broker on the host's loopback at 10.0.2.2;
 *   - raspi3b: the Pi 3's SoC with its own device tree (-dtb), the image on the SD card. Its RAM
 *     and cores are fixed by the machine.
 * The guest powers itself off after printing its report; -no-reboot turns a guest reboot (panic,
 * emergency) into an exit too, and a raspi3b guest (no PSCI to power off with) is stopped once
 * `stopWhen` has matched the log. On timeout qemu is killed and the caller gets the log so far.
 */
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";

export interface BootOptions {
  image: string;
  vmlinuz: string;
  initrd: string;
  append: string;
  timeoutMs: number;
  /** Where the whole serial log is written (kept for a failing run). */
  logFile: string;
  memMiB?: number;
  smp?: number;
  machine?: "virt" | "raspi3b";
  /** CPU model for virt (default cortex-a53). */
  cpu?: string;
  /** Device tree blob (raspi3b). */
  dtb?: string;
  /** virt: user networking, the host's loopback at 10.0.2.2 (default: no network). */
  network?: boolean;
  /** Called with each complete serial line as it arrives. */
  onLine?: (line: string) => void;
  /** Kill qemu (and resolve as a clean exit) shortly after a serial line matches. */
  stopWhen?: RegExp;
}

export interface BootResult {
  log: string;
  exitCode: number | null;
  timedOut: boolean;
  seconds: number;
}

export function qemuArgs(o: BootOptions): string[] {
  const common = ["-nographic", "-kernel", o.vmlinuz, "-initrd", o.initrd, "-append", o.append, "-no-reboot"];
  if (o.machine === "raspi3b") {
    if (!o.dtb) throw new Error("qemu raspi3b needs the board's device tree (dtb)");
    // The SD card must be a power of two in size (QEMU's SD model); RAM (1 GiB) and 4 cores are fixed.
    return ["-M", "raspi3b", "-dtb", o.dtb, ...common, "-drive", `file=${o.image},format=raw,if=sd`];
  }
  return [
    "-M",
    "virt",
    "-cpu",
    o.cpu ?? "cortex-a53",
    "-smp",
    String(o.smp ?? 2),
    "-m",
    String(o.memMiB ?? 1024),
    // romfile= : no PXE option ROM (Debian ships it in ipxe-qemu, which the guest never needs).
    ...(o.network
      ? ["-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0,romfile="]
      : ["-nic", "none"]),
    ...common,
    "-drive",
    `file=${o.image},format=raw,if=virtio`,
  ];
}

export function bootImage(o: BootOptions): Promise<BootResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn("qemu-system-aarch64", qemuArgs(o), { stdio: ["ignore", "pipe", "pipe"] });
    const chunks: Buffer[] = [];
    let timedOut = false;
    let stopped = false;
    let partial = "";
    const onData = (b: Buffer) => {
      chunks.push(b);
      if (!o.onLine && !o.stopWhen) return;
      const lines = (partial + b.toString("utf8").replace(/\r/g, "")).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        o.onLine?.(line);
        if (!stopped && o.stopWhen?.test(line)) {
          stopped = true;
          // A moment for the second copy of a report line, then stop the machine.
          setTimeout(() => child.kill("SIGKILL"), 1500);
        }
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, o.timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      const log = Buffer.concat(chunks).toString("utf8").replace(/\r/g, "");
      writeFileSync(o.logFile, log);
      resolve({
        log,
        exitCode: stopped && !timedOut ? 0 : code,
        timedOut,
        seconds: Math.round((performance.now() - t0) / 100) / 10,
      });
    });
  });
}

/** The last lines of a serial log, for a failure message. */
export function tail(log: string, lines = 60): string {
  return log.split("\n").slice(-lines).join("\n");
}

/** qemu does not read cmdline.txt: pass the image's own line with the console and root qemu has. */
export function qemuAppend(cmdlineTxt: string): string {
  const kept = cmdlineTxt
    .trim()
    .split(/\s+/)
    .filter((w) => !/^(console|root|init)=/.test(w));
  return ["console=ttyAMA0", "root=/dev/vda2", ...kept, "loglevel=4", "systemd.show_status=error"].join(" ");
}
