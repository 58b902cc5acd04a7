/**
 * What an I2C failure means, for `fieldrelay doctor`: the errno of opening an adapter or of a
 * 1-byte probe read, turned into one line and its fix. Pure. The kernel's I2C drivers use:
 *
 *   ENXIO / EREMOTEIO   no acknowledgement: nothing at that address (i2c-bcm2835 says EREMOTEIO)
 *   EIO                 the transfer failed: a NACK on some adapters, or a bus fault
 *   ETIMEDOUT           the adapter gave up: SDA or SCL held low, or a device stretching the clock
 *   EAGAIN              arbitration lost: another master on the bus
 *   EBUSY               a kernel driver owns the address (only with I2C_SLAVE; I2C_RDWR ignores it)
 *   ENOTTY / EINVAL     the node is not an i2c-dev adapter
 *   ENOSYS              the ioctl never reached a driver: qemu-user answers I2C ioctls this way
 *   EOPNOTSUPP          an SMBus-only adapter (no I2C_FUNC_I2C)
 *
 * "Nothing answers" is said only for the first two: a stuck bus or the wrong kind of node is not a
 * missing chip, and its fix is different.
 */
import { Errno, errnoName, SyscallError } from "../hal/libc/index.ts";
import { type CheckResult, fail, ok, warn } from "./types.ts";

const hex = (n: number) => `0x${n.toString(16).padStart(2, "0")}`;

const errnoOf = (error: unknown) => (error instanceof SyscallError ? error.errno : undefined);
const syscallOf = (error: unknown) => (error instanceof SyscallError ? error.syscall : "open");

/** A failure that belongs to the adapter, not to one address: undefined when it is not one. */
function adapterProblem(path: string, error: unknown): { message: string; fix: string } | undefined {
  const errno = errnoOf(error);
  const call = syscallOf(error);
  switch (errno) {
    case Errno.ENOTTY:
    case Errno.EINVAL:
      return {
        message: `${path} is not an I2C adapter: ${call} failed with ${errnoName(errno)}`,
        fix: "load i2c-dev (modprobe i2c-dev; list it in /etc/modules) — the node must be its character device (ls -l: c 89,N) — and check system.root",
      };
    case Errno.ENOSYS:
      return {
        message: `${path}: ${call} is not implemented (ENOSYS): this kernel or emulator does not pass I2C ioctls to a driver (qemu-user answers them so)`,
        fix: "run doctor natively on the device, not under qemu-user; a kernel needs CONFIG_I2C_CHARDEV",
      };
    case Errno.EOPNOTSUPP:
      return {
        message: `${path} speaks SMBus only; fieldrelay needs plain I2C transfers (I2C_RDWR)`,
        fix: "use the SoC's I2C controller (dtparam=i2c_arm=on) rather than an SMBus-only adapter",
      };
    case Errno.EACCES:
    case Errno.EPERM:
      return {
        message: `${path}: permission denied (${errnoName(errno)})`,
        fix: "install deploy/device/udev/60-fieldrelay.rules and add the service user to group i2c",
      };
    default:
      return undefined;
  }
}

/** The verdict for an adapter that could not be opened or asked what it can do. */
export function i2cAdapterVerdict(id: string, path: string, error: unknown): CheckResult {
  const known = adapterProblem(path, error);
  if (known) return fail(id, known.message, known.fix);
  const errno = errnoOf(error);
  return fail(
    id,
    `cannot open ${path}: ${errno === undefined ? (error as Error).message : errnoName(errno)}`,
    "look at dmesg for the I2C controller, and check that the node is i2c-dev's",
  );
}

export interface I2cDevice {
  /** Result id, e.g. "i2c.air". */
  id: string;
  /** "sensor air (bme280)". */
  what: string;
  bus: number;
  address: number;
  /** The adapter's node, for adapter-level failures. */
  path: string;
}

/** The verdict for a 1-byte probe read of one device: undefined error means it answered. */
export function i2cProbeVerdict(d: I2cDevice, error: unknown): CheckResult {
  const where = `${hex(d.address)} on bus ${d.bus}`;
  if (error === undefined) return ok(d.id, `${d.what} answers at ${where}`);
  const errno = errnoOf(error);
  const scan = `fieldrelay i2c scan --bus ${d.bus}`;
  const wiring = `check wiring (SDA GPIO2, SCL GPIO3, 3.3 V, GND) and the address: ${scan}`;
  switch (errno) {
    case Errno.ENXIO:
    case Errno.EREMOTEIO:
      return fail(
        d.id,
        `${d.what}: nothing answers at ${where} (no acknowledgement, ${errnoName(errno)})`,
        wiring,
      );
    case Errno.EIO:
      return fail(
        d.id,
        `${d.what}: the transfer to ${where} failed (EIO): no acknowledgement, or a fault on the bus`,
        wiring,
      );
    case Errno.ETIMEDOUT:
      return fail(
        d.id,
        `${d.what}: bus ${d.bus} timed out talking to ${hex(d.address)} (ETIMEDOUT): SDA or SCL is held low, or a device stretches the clock too long`,
        `check the pull-ups to 3.3 V and for a device holding SDA low (power-cycle the sensors), then ${scan}`,
      );
    case Errno.EAGAIN:
      return fail(
        d.id,
        `${d.what}: lost arbitration on bus ${d.bus} (EAGAIN): another master drives the bus`,
        "keep one I2C master per bus: look for a second controller or a HAT's microcontroller on SDA/SCL",
      );
    case Errno.EBUSY:
      return warn(
        d.id,
        `${d.what}: ${where} is busy (EBUSY): a kernel driver owns the address`,
        "remove the dtoverlay that binds it",
      );
  }
  const adapter = adapterProblem(d.path, error);
  if (adapter) return fail(d.id, `${d.what}: ${adapter.message}`, adapter.fix);
  return fail(
    d.id,
    `${d.what}: probing ${where} failed: ${errno === undefined ? (error as Error).message : errnoName(errno)}`,
    wiring,
  );
}
