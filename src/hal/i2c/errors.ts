/**
 * Typed I²C failures. Each is a SyscallError (so errno/code/syscall stay available, as the I2cBus
 * contract promises) with a message that names the adapter and address and a hint saying what to
 * do. `classifyI2cError` turns the kernel's errno into one of them.
 */
import { Errno, SyscallError } from "../libc/index.ts";

export const hex2 = (address: number) => `0x${address.toString(16).padStart(2, "0")}`;

/** I2cAdapterMissing: /dev/i2c-N does not exist (I2C not enabled, or wrong bus number). */
export class I2cAdapterMissing extends SyscallError {
  constructor(path: string) {
    super("open", Errno.ENOENT, path, "enable I2C with dtparam=i2c_arm=on");
    this.message = `${path}: no such adapter (ENOENT)`;
  }
}

/** I2cNotAdapter: the path exists but does not answer i2c-dev ioctls (ENOTTY). */
export class I2cNotAdapter extends SyscallError {
  constructor(path: string, errno: number, syscall: string) {
    super(syscall, errno, path, "point system.root at a tree whose dev/i2c-N are i2c-dev character devices");
    this.message = `${path}: not an I2C adapter (${syscall} failed with ${this.code})`;
  }
}

/**
 * I2cIoctlsUnsupported: the ioctl never reached an I2C driver (ENOSYS). qemu-user answers every I2C
 * ioctl so; on a real device it means a kernel without CONFIG_I2C_CHARDEV.
 */
export class I2cIoctlsUnsupported extends SyscallError {
  constructor(path: string, syscall: string) {
    super(
      syscall,
      Errno.ENOSYS,
      path,
      "run natively on the device, not under qemu-user; a kernel needs CONFIG_I2C_CHARDEV",
    );
    this.message = `${path}: ${syscall} is not implemented (ENOSYS): this kernel or emulator does not pass I2C ioctls to a driver (qemu-user answers them so)`;
  }
}

/** I2cAddressBusy: a kernel driver has claimed the address (EBUSY), e.g. rtc-ds1307 at 0x68. */
export class I2cAddressBusy extends SyscallError {
  constructor(
    path: string,
    readonly address: number,
    syscall: string,
  ) {
    super(
      syscall,
      Errno.EBUSY,
      path,
      "read the chip through its kernel driver, or remove the dtoverlay that binds it",
    );
    this.message = `${path}: address ${hex2(address)} is owned by a kernel driver (EBUSY)`;
  }
}

/** I2cNack: nothing acknowledged at the address, or the device stopped acknowledging mid-transfer. */
export class I2cNack extends SyscallError {
  constructor(
    path: string,
    readonly address: number,
    errno: number,
    syscall: string,
  ) {
    super(syscall, errno, path, "check wiring, power and the address (fieldrelay i2c scan)");
    this.message = `${path}: no acknowledgement (NACK) at address ${hex2(address)} (${this.code})`;
  }
}

/** Map a failed I²C call to its typed error; errors that are already typed pass through. */
export function classifyI2cError(error: unknown, path: string, address: number): unknown {
  if (!(error instanceof SyscallError)) return error;
  if (error instanceof I2cNack || error instanceof I2cAddressBusy || error instanceof I2cAdapterMissing)
    return error;
  switch (error.errno) {
    case Errno.ENXIO:
    case Errno.EREMOTEIO:
      return new I2cNack(path, address, error.errno, error.syscall);
    case Errno.EBUSY:
      return new I2cAddressBusy(path, address, error.syscall);
    default:
      return error;
  }
}
