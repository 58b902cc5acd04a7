/**
 * FatVolume reads and writes the FAT boot partition inside an image file with mtools
 * (`-i img@@OFFSET`), without mounting. Paths are absolute inside the volume ("/config.txt").
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exec } from "./exec.ts";

export class FatVolume {
  constructor(
    readonly img: string,
    readonly offsetBytes: number,
    readonly sizeBytes: number,
  ) {}

  private get spec(): string {
    return `${this.img}@@${this.offsetBytes}`;
  }

  /** The file's bytes, or undefined when it does not exist (or the volume is not FAT). */
  read(path: string): Buffer | undefined {
    try {
      return exec(["mcopy", "-n", "-i", this.spec, `::${path}`, "-"], { env: { MTOOLS_SKIP_CHECK: "1" } })
        .stdout;
    } catch {
      return undefined;
    }
  }

  exists(path: string): boolean {
    try {
      exec(["mdir", "-b", "-i", this.spec, `::${path}`], { env: { MTOOLS_SKIP_CHECK: "1" } });
      return true;
    } catch {
      return false;
    }
  }

  mkdir(path: string): void {
    if (!this.exists(path)) exec(["mmd", "-i", this.spec, `::${path}`]);
  }

  /** Copy a host file to `path`, replacing it. */
  write(hostFile: string, path: string): void {
    exec(["mcopy", "-o", "-n", "-i", this.spec, hostFile, `::${path}`]);
  }

  /** fsck.vfat has no offset option: check a sparse copy of the partition. */
  check(): void {
    const dir = mkdtempSync(join(tmpdir(), "fieldrelay-fat-"));
    try {
      const part = join(dir, "boot.vfat");
      exec([
        "dd",
        `if=${this.img}`,
        `of=${part}`,
        "bs=4M",
        "iflag=skip_bytes,count_bytes",
        `skip=${this.offsetBytes}`,
        `count=${this.sizeBytes}`,
        "conv=sparse",
        "status=none",
      ]);
      exec(["fsck.vfat", "-n", part], {
        hint: "the boot partition is damaged; start again from the base image",
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
