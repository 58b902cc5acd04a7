/** Host programs the boot test needs, with the Debian package that provides each. */
import type { Tool } from "../../support/tools.ts";

export const BOOT_TOOLS: Tool[] = [
  { cmd: "mmdebstrap", pkg: "mmdebstrap" },
  { cmd: "qemu-system-aarch64", pkg: "qemu-system-arm" },
  { cmd: "qemu-aarch64-static", pkg: "qemu-user-static" },
  { cmd: "update-binfmts", pkg: "binfmt-support" },
  { cmd: "arch-test", pkg: "arch-test" },
  { cmd: "cpio", pkg: "cpio" },
  { cmd: "dpkg-deb", pkg: "dpkg" },
  { cmd: "apt-get", pkg: "apt" },
  { cmd: "mkfs.vfat", pkg: "dosfstools" },
  { cmd: "mcopy", pkg: "mtools" },
  { cmd: "mkfs.ext4", pkg: "e2fsprogs" },
  { cmd: "debugfs", pkg: "e2fsprogs" },
  { cmd: "sfdisk", pkg: "fdisk" },
  // kernel modules of Debian 13 are .ko.xz; the raspi3b test reads line names from the dtb
  { cmd: "xz", pkg: "xz-utils" },
  { cmd: "fdtget", pkg: "device-tree-compiler" },
];
