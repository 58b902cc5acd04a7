/**
 * Page size and kernel. fieldrelay is tested on 4 KiB pages (Pi Zero 2/3/4 kernels) and on
 * 16 KiB pages (the Pi 5's default kernel_2712.img) under emulation; 64 KiB is untested. The page
 * size is the kernel's (KernelPageSize in the root's /proc/self/smaps), not a compile-time guess.
 */
import { readText, under } from "../files.ts";
import { type Check, fail, ok, warn } from "../types.ts";

export function pageSizeKiB(smaps: string): number | undefined {
  const m = /^KernelPageSize:\s+(\d+) kB$/m.exec(smaps);
  return m ? Number(m[1]) : undefined;
}

export const kernelCheck: Check = (ctx) => {
  const release = readText(under(ctx.root, "/proc/sys/kernel/osrelease"))?.trim() ?? "unknown";
  const smaps = readText(under(ctx.root, "/proc/self/smaps"), 16_384);
  const kib = smaps === undefined ? undefined : pageSizeKiB(smaps);
  if (kib === undefined) {
    return [
      fail(
        "kernel.page_size",
        `cannot read the page size from ${under(ctx.root, "/proc/self/smaps")} (kernel ${release})`,
        "mount /proc (and check system.root in the config)",
      ),
    ];
  }
  if (kib === 4) return [ok("kernel.page_size", `4 KiB pages, kernel ${release}`)];
  if (kib === 16)
    return [
      ok(
        "kernel.page_size",
        `16 KiB pages, kernel ${release} (tested under emulation with Debian's 16k kernel; not yet on Pi 5 silicon)`,
      ),
    ];
  return [
    warn(
      "kernel.page_size",
      `${kib} KiB pages, kernel ${release}: untested with fieldrelay's runtime`,
      "boot a 4 KiB or 16 KiB-page kernel (on a Pi 5: kernel=kernel_2712.img or kernel8.img in config.txt)",
    ),
  ];
};
