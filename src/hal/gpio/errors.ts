/** Typed GPIO failures: which chip, which line, who holds it, and what to do. */
import { Errno, SyscallError } from "../libc/index.ts";

/** No /dev/gpiochipN where one was expected. */
export class GpioChipMissing extends SyscallError {
  constructor(path: string) {
    super(
      "open",
      Errno.ENOENT,
      path,
      "no GPIO character device: a kernel with CONFIG_GPIO_CDEV_V2 (5.10+) provides /dev/gpiochipN",
    );
    this.message = `${path}: no such GPIO chip (ENOENT)`;
  }
}

/** The path does not answer GPIO ioctls (ENOTTY): not a gpiochip character device. */
export class GpioNotAChip extends SyscallError {
  constructor(path: string, errno: number, syscall: string) {
    super(syscall, errno, path, "point system.root at a tree whose dev/gpiochipN are GPIO character devices");
    this.message = `${path}: not a GPIO chip (${syscall} failed with ${this.code})`;
  }
}

/** The line is already requested (EBUSY) by another process or a kernel driver. */
export class GpioLineBusy extends SyscallError {
  constructor(
    path: string,
    readonly offset: number,
    readonly consumer: string,
  ) {
    super(
      "ioctl(GPIO_V2_GET_LINE)",
      Errno.EBUSY,
      path,
      "stop the other user of the line, or remove the dtoverlay that claims it (e.g. w1-gpio on GPIO4)",
    );
    this.message = `${path}: line ${offset} is in use${consumer ? ` by "${consumer}"` : ""} (EBUSY)`;
  }
}

/** A line name that no chip under root carries. */
export class GpioLineNotFound extends SyscallError {
  constructor(
    readonly lineName: string,
    chips: string[],
  ) {
    super(
      "ioctl(GPIO_V2_GET_LINEINFO)",
      Errno.ENOENT,
      chips.join(", ") || "/dev/gpiochip*",
      "list line names with `fieldrelay gpio info`",
    );
    this.message = `no GPIO line named "${lineName}" on ${chips.length ? chips.join(", ") : "any chip (none found)"}`;
  }
}

/** An offset past the chip's last line: the kernel's bare EINVAL, said with the chip's size. */
export class GpioLineOutOfRange extends SyscallError {
  constructor(
    path: string,
    readonly offset: number,
    readonly lines: number,
  ) {
    super("ioctl(GPIO_V2_GET_LINE)", Errno.EINVAL, path, "list the chip's lines with `fieldrelay gpio info`");
    this.message = `${path}: no line ${offset} (the chip has ${lines} lines, 0-${lines - 1})`;
  }
}
