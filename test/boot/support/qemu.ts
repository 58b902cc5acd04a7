/**
 * Boots an image under qemu-system-aarch64 (-M virt, Cortex-A53 like a Pi 3/Zero 2, no network)
 * and collects the serial console. The guest powers itself off after printing its report;
 * -no-reboot turns a guest reboot (panic, emergency) into an exit too. On timeout qemu is killed
 * and the caller gets the log so far.
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
}

export interface BootResult {
  log: string;
  exitCode: number | null;
  timedOut: boolean;
  seconds: number;
}

export function qemuArgs(o: BootOptions): string[] {
  return [
    "-M",
    "virt",
    "-cpu",
    "cortex-a53",
    "-smp",
    String(o.smp ?? 2),
    "-m",
    String(o.memMiB ?? 1024),
    "-nographic",
    "-nic",
    "none",
    "-kernel",
    o.vmlinuz,
    "-initrd",
    o.initrd,
    "-append",
    o.append,
    "-drive",
    `file=${o.image},format=raw,if=virtio`,
    "-no-reboot",
  ];
}

export function bootImage(o: BootOptions): Promise<BootResult> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn("qemu-system-aarch64", qemuArgs(o), { stdio: ["ignore", "pipe", "pipe"] });
    const chunks: Buffer[] = [];
    let timedOut = false;
    child.stdout.on("data", (b: Buffer) => chunks.push(b));
    child.stderr.on("data", (b: Buffer) => chunks.push(b));
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
      resolve({ log, exitCode: code, timedOut, seconds: Math.round((performance.now() - t0) / 100) / 10 });
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
