/**
 * The baked image on a 4 KiB-page kernel: Debian's arm64 kernel of the host's release under
 * qemu-system-aarch64 -M virt -cpu cortex-a53 (a Pi 3/Zero 2's core). The broker is unreachable
 * on purpose: fieldrelay must run degraded, stay fed and stop cleanly. See support/baked.ts.
 */
import { describeBakedBoot } from "./support/baked.ts";
import { virtKernelSpec } from "./support/kernel.ts";

describeBakedBoot({
  title: "Baked image boot, 4 KiB pages (virt, cortex-a53)",
  kernel: virtKernelSpec,
  cpu: "cortex-a53",
  pageSize: 4096,
  logName: "fieldrelay-boot-serial.log",
});
