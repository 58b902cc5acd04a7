/**
 * A real ext4 on a loop device (root only), and EXT4_IOC_SHUTDOWN on it: from then on every
 * read and write of that filesystem fails with EIO, as after an SD card error — without touching
 * any other filesystem.
 */
import { closeSync, mkdirSync, openSync, rmSync } from "node:fs";
import { ioctl } from "../../src/hal/libc/index.ts";

/** _IOR('X', 125, __u32) */
const EXT4_IOC_SHUTDOWN = 0x8004587d;
/** Shut down without flushing the journal (like pulling the card). */
const EXT4_GOING_FLAGS_NOLOGFLUSH = 2;

export class LoopExt4 {
  private constructor(
    readonly image: string,
    readonly dir: string,
  ) {}

  static mount(image: string, dir: string, sizeMiB: number): LoopExt4 {
    const run = (cmd: string[]) => {
      const r = Bun.spawnSync(cmd);
      if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr.toString()}`);
    };
    run(["truncate", "-s", `${sizeMiB}M`, image]);
    run(["mkfs.ext4", "-q", "-F", image]);
    mkdirSync(dir, { recursive: true });
    run(["mount", "-o", "loop", image, dir]);
    return new LoopExt4(image, dir);
  }

  /** Every later I/O on the filesystem fails with EIO. */
  shutdown(): void {
    const fd = openSync(this.dir, "r");
    try {
      const flags = new Uint8Array(new ArrayBuffer(4));
      new DataView(flags.buffer).setUint32(0, EXT4_GOING_FLAGS_NOLOGFLUSH, true);
      ioctl(fd, EXT4_IOC_SHUTDOWN, flags, this.dir, "EXT4_IOC_SHUTDOWN");
    } finally {
      closeSync(fd);
    }
  }

  unmount(): void {
    Bun.spawnSync(["umount", "-l", this.dir]);
    rmSync(this.image, { force: true });
  }
}
