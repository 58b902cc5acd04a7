/**
 * Device-tree overlay compilation: overlays/*.dts → *.dtbo with Debian's device-tree-compiler.
 * `-@` keeps the symbols and fixups (`&gpio` becomes a __fixups__ entry) that the Raspberry Pi
 * firmware resolves against the board's own device tree when config.txt says dtoverlay=<name>.
 * Used by build/build.ts (dist/fieldrelay-gpio.dtbo) and by the deploy-files tests.
 */
import { spawnSync } from "node:child_process";
import { FieldrelayError } from "../src/errors/index.ts";

/** OverlayError: dtc is missing, or it refused or warned about the source (its messages are in `context.stderr`). */
export class OverlayError extends FieldrelayError {}

export interface DtcOptions {
  /** The dtc executable; found on PATH when omitted. */
  dtc?: string;
}

function runDtc(args: string[], subject: string, options: DtcOptions): string {
  const dtc = options.dtc ?? "dtc";
  const proc = spawnSync(dtc, args, { encoding: "utf8" });
  if (proc.error) {
    const code = (proc.error as NodeJS.ErrnoException).code;
    if (code === "ENOENT")
      throw new OverlayError(`cannot compile ${subject}: ${dtc} not found`, {
        hint: "apt-get install device-tree-compiler",
        context: { file: subject, command: dtc },
      });
    throw new OverlayError(`cannot run ${dtc} for ${subject}: ${proc.error.message}`, {
      context: { file: subject, command: dtc },
      cause: proc.error,
    });
  }
  // Warnings fail too: the firmware skips an overlay it cannot apply without a word at boot, so
  // the build is the one place a mistake in the source shows.
  if (proc.status !== 0 || proc.stderr.trim() !== "")
    throw new OverlayError(`${dtc} failed on ${subject} (exit ${proc.status}): ${proc.stderr.trim()}`, {
      hint: "fix the device-tree source at the line dtc names",
      context: { file: subject, command: dtc, stderr: proc.stderr },
    });
  return proc.stdout;
}

/**
 * compileOverlay runs `dtc -@ -I dts -O dtb -o dtboPath dtsPath` and returns dtboPath. Throws
 * OverlayError when dtc is missing (hint: apt-get install device-tree-compiler), fails or warns.
 */
export function compileOverlay(dtsPath: string, dtboPath: string, options: DtcOptions = {}): string {
  runDtc(["-@", "-I", "dts", "-O", "dtb", "-o", dtboPath, dtsPath], dtsPath, options);
  return dtboPath;
}

/**
 * decompileOverlay returns the source form of a compiled overlay (`dtc -I dtb -O dts`), for checks.
 * dtc's gpios_property check is off: it mistakes the __fixups__ entry named "gpio" for a GPIO
 * specifier and warns about every overlay that targets &gpio.
 */
export function decompileOverlay(dtboPath: string, options: DtcOptions = {}): string {
  return runDtc(["-W", "no-gpios_property", "-I", "dtb", "-O", "dts", dtboPath], dtboPath, options);
}
