/**
 * INTERIM (until test/support/pi-image.ts and deploy/image/bake.ts land on this branch): builds a
 * Raspberry-Pi-OS-shaped image with fieldrelay already installed, so the boot and the checks can be
 * developed. The final test uses makePiImage + the real baker instead.
 */
import {
  appendFileSync,
  chmodSync,
  copyFileSync,
  mkdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { exec } from "./exec.ts";

export function interimInstall(root: string, o: { binary: string; unit: string; config: string }): void {
  const put = (p: string, from: string, mode: number) => {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    copyFileSync(from, join(root, p));
    chmodSync(join(root, p), mode);
  };
  put("usr/local/bin/fieldrelay", o.binary, 0o755);
  put("etc/systemd/system/fieldrelay.service", o.unit, 0o644);
  mkdirSync(join(root, "etc/fieldrelay"), { recursive: true });
  writeFileSync(join(root, "etc/fieldrelay/config.toml"), o.config, { mode: 0o644 });
  mkdirSync(join(root, "etc/systemd/system/multi-user.target.wants"), { recursive: true });
  symlinkSync(
    "/etc/systemd/system/fieldrelay.service",
    join(root, "etc/systemd/system/multi-user.target.wants/fieldrelay.service"),
  );
  appendFileSync(join(root, "etc/group"), "i2c:x:998:fieldrelay\ngpio:x:997:fieldrelay\nfieldrelay:x:999:\n");
  appendFileSync(join(root, "etc/gshadow"), "i2c:!::fieldrelay\ngpio:!::fieldrelay\nfieldrelay:!::\n");
  appendFileSync(join(root, "etc/passwd"), "fieldrelay:x:999:999::/var/lib/fieldrelay:/usr/sbin/nologin\n");
  appendFileSync(join(root, "etc/shadow"), "fieldrelay:!:19000::::::\n");
  mkdirSync(join(root, "var/lib/fieldrelay"), { recursive: true });
  mkdirSync(join(root, "boot/firmware"), { recursive: true });
  writeFileSync(
    join(root, "etc/fstab"),
    [
      "proc /proc proc defaults 0 0",
      "PARTUUID=1234abcd-01 /boot/firmware vfat defaults,ro 0 2",
      "PARTUUID=1234abcd-02 / ext4 defaults,noatime,ro 0 1",
      "LABEL=fieldrelay-data /var/lib/fieldrelay ext4 defaults,noatime,data=journal 0 2",
      "tmpfs /tmp tmpfs nosuid,nodev,mode=1777 0 0",
      "tmpfs /var/tmp tmpfs nosuid,nodev,mode=1777 0 0",
      "tmpfs /var/log tmpfs nosuid,nodev,mode=0755 0 0",
      "",
    ].join("\n"),
  );
}

export function interimImage(o: {
  out: string;
  rootfsDir: string;
  rootSizeMiB: number;
  dataSizeMiB: number;
}): void {
  const bootStart = 8192;
  const bootSectors = 512 * 2048; // -s 8 needs ≥ 65525 clusters: 512 MiB like Raspberry Pi OS
  const rootStart = bootStart + bootSectors;
  const rootSectors = o.rootSizeMiB * 2048;
  const dataStart = rootStart + rootSectors;
  const dataSectors = o.dataSizeMiB * 2048;
  rmSync(o.out, { force: true });
  exec(["truncate", "-s", String((dataStart + dataSectors) * 512), o.out]);
  exec(["sfdisk", "--quiet", o.out], {
    input: `label: dos\nlabel-id: 0x1234abcd\n${bootStart},${bootSectors},c\n${rootStart},${rootSectors},83\n${dataStart},${dataSectors},83\n`,
  });
  exec([
    "mkfs.vfat",
    "-F",
    "32",
    "-s",
    "8",
    "-n",
    "bootfs",
    "--offset",
    String(bootStart),
    o.out,
    String(bootSectors / 2),
  ]);
  const tmp = `${o.out}.txt`;
  writeFileSync(
    tmp,
    "console=serial0,115200 console=tty1 root=PARTUUID=1234abcd-02 rootfstype=ext4 fsck.repair=yes rootwait ro\n",
  );
  exec(["mcopy", "-i", `${o.out}@@${bootStart * 512}`, tmp, "::cmdline.txt"]);
  writeFileSync(tmp, "arm_64bit=1\n");
  exec(["mcopy", "-i", `${o.out}@@${bootStart * 512}`, tmp, "::config.txt"]);
  rmSync(tmp);
  exec([
    "mkfs.ext4",
    "-q",
    "-b",
    "4096",
    "-T",
    "default",
    "-L",
    "rootfs",
    "-E",
    `offset=${rootStart * 512},root_owner=0:0`,
    "-d",
    o.rootfsDir,
    o.out,
    `${o.rootSizeMiB}M`,
  ]);
  exec([
    "mkfs.ext4",
    "-q",
    "-b",
    "4096",
    "-T",
    "default",
    "-L",
    "fieldrelay-data",
    "-E",
    `offset=${dataStart * 512},root_owner=999:999`,
    o.out,
    `${o.dataSizeMiB}M`,
  ]);
  exec(["tune2fs", "-o", "journal_data", `${o.out}?offset=${dataStart * 512}`]);
}
