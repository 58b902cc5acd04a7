/**
 * The install bundle: everything deploy/install.sh reads, in one directory that push.sh copies to a
 * device and the image baker runs from. Layout (relative to `out`):
 *
 *   install.sh                      0755
 *   fieldrelay                      the binary, 0755 (ARM64 from `npm run build`; tests pass x64)
 *   config.example.toml             written to /etc/fieldrelay/config.toml when absent
 *   systemd/fieldrelay.service      required: assembling fails without it
 *   device/...                      copy of deploy/device/ (whatever of it exists)
 *   overlays/config.txt             the firmware config.txt fragment
 *   overlays/fieldrelay-gpio.dtbo   only when `dtbo` is given
 *   VERSION                         one line: `fieldrelay version` of the binary
 *
 * `out` is replaced as a whole, so a bundle never mixes files from two builds.
 */
import {
  chmodSync,
  closeSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  readSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export interface BundleOptions {
  /** Directory to (re)create. */
  out: string;
  /** The fieldrelay executable to ship. */
  binary: string;
  /** Compiled GPIO overlay; copied to overlays/fieldrelay-gpio.dtbo. Must exist when given. */
  dtbo?: string;
  /** Repository root holding deploy/ and overlays/ (default: this repository). */
  root?: string;
  /** VERSION line; default: the binary's own `version` output. */
  version?: string;
}

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export class BundleError extends Error {
  constructor(
    message: string,
    readonly hint: string,
  ) {
    super(`${message} (${hint})`);
    this.name = "BundleError";
  }
}

/** Build `opts.out` as described above; returns the VERSION line written. */
export function assembleBundle(opts: BundleOptions): string {
  const root = opts.root ?? REPO;
  const need = (path: string, what: string, hint: string): string => {
    if (!existsSync(path)) throw new BundleError(`${what} not found at ${path}`, hint);
    return path;
  };
  const unit = need(
    join(root, "deploy/systemd/fieldrelay.service"),
    "the systemd unit",
    "it lives in deploy/systemd/",
  );
  const installer = need(join(root, "deploy/install.sh"), "the installer", "it lives in deploy/");
  const example = need(join(root, "deploy/config.example.toml"), "the example config", "it lives in deploy/");
  const fragment = need(
    join(root, "overlays/config.txt"),
    "the config.txt fragment",
    "it lives in overlays/",
  );
  const binary = need(opts.binary, "the binary", "run npm run build first");
  if (opts.dtbo !== undefined)
    need(opts.dtbo, "the GPIO overlay", "build compiles overlays/fieldrelay-gpio.dts");
  const version = opts.version ?? binaryVersion(binary);

  rmSync(opts.out, { recursive: true, force: true });
  mkdirSync(join(opts.out, "systemd"), { recursive: true });
  mkdirSync(join(opts.out, "overlays"), { recursive: true });
  copyFileSync(installer, join(opts.out, "install.sh"));
  chmodSync(join(opts.out, "install.sh"), 0o755);
  copyFileSync(binary, join(opts.out, "fieldrelay"));
  chmodSync(join(opts.out, "fieldrelay"), 0o755);
  copyFileSync(example, join(opts.out, "config.example.toml"));
  cpSync(dirname(unit), join(opts.out, "systemd"), { recursive: true });
  if (existsSync(join(root, "deploy/device")))
    cpSync(join(root, "deploy/device"), join(opts.out, "device"), { recursive: true });
  copyFileSync(fragment, join(opts.out, "overlays/config.txt"));
  if (opts.dtbo !== undefined) copyFileSync(opts.dtbo, join(opts.out, "overlays/fieldrelay-gpio.dtbo"));
  writeFileSync(join(opts.out, "VERSION"), `${version}\n`);
  return version;
}

const AARCH64 = 0xb7;

/**
 * `<binary> version`, run directly or, for an ARM64 binary on another machine without binfmt,
 * under qemu-aarch64-static with the cross libc.
 */
function binaryVersion(binary: string): string {
  const attempts: string[][] = [[binary, "version"]];
  const header = Buffer.alloc(20);
  const fd = openSync(binary, "r");
  try {
    readSync(fd, header, 0, 20, 0);
  } finally {
    closeSync(fd);
  }
  const machine = header.readUInt16LE(18);
  if (machine === AARCH64)
    attempts.push(["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu", binary, "version"]);
  for (const cmd of attempts) {
    try {
      const r = Bun.spawnSync(cmd, { stdout: "pipe", stderr: "pipe", timeout: 60_000 });
      const line = r.stdout.toString().trim().split("\n")[0] ?? "";
      if (r.exitCode === 0 && line.startsWith("fieldrelay ")) return line;
    } catch {
      // not executable here (e.g. qemu missing): try the next way
    }
  }
  throw new BundleError(
    `cannot run ${binary} to read its version`,
    "install qemu-user-static for an ARM64 binary, or pass version",
  );
}
