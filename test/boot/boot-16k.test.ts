/**
 * The baked image on the Pi 5's page size: Debian's linux-image-arm64-16k (trixie) under
 * qemu-system-aarch64 -M virt -cpu cortex-a76 (the Pi 5's core; QEMU's a53/a72 models cannot run a
 * 16 KiB-page kernel). The same service checks as the 4 KiB boot (READY, watchdog, ro root,
 * data=journal, partition grow, clean stop, doctor; not the install.sh re-run/rollback), plus a
 * capture → outage → delivery round against a mosquitto on the host. Emulation, not Pi 5 silicon.
 * See support/baked.ts.
 */
import { describeBakedBoot } from "./support/baked.ts";
import { VIRT_16K_KERNEL } from "./support/kernel.ts";

describeBakedBoot({
  title: "Baked image boot, 16 KiB pages (virt, cortex-a76, Debian's 16k kernel)",
  kernel: () => VIRT_16K_KERNEL,
  cpu: "cortex-a76",
  pageSize: 16384,
  logName: "fieldrelay-boot-16k-serial.log",
  delivery: true,
  // install.sh re-run and rollback are page-size independent and proven by the 4 KiB boot; left
  // out here they save about two minutes of CI.
  installChecks: false,
  // QEMU emulates the a76 more slowly than the a53, and the delivery round adds a phase (5 min
  // on the shared machine under load).
  bootTimeoutMs: 12 * 60_000,
});
