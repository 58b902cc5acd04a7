/**
 * `fieldrelay i2c scan|read|write`: i2cdetect / i2cget / i2cset for a device without i2c-tools,
 * over the same /dev/i2c-N binding the runtime uses. Paths are under --root (default "/", or
 * FIELDRELAY_SYSTEM_ROOT). A missing adapter or a silent address exits 69 (EX_UNAVAILABLE).
 */
import { type Command, InvalidArgumentError } from "commander";
import { describeError, ExitCode, FieldrelayError } from "../../errors/index.ts";
import { formatScanGrid, hex2, I2C_BLOCK_MAX, openI2cBus, SmbusDevice } from "../../hal/i2c/index.ts";
import type { Io } from "../io.ts";

/** A number in decimal or 0x-hex within [min, max], for commander's argParser. */
export function intArg(name: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = /^(0x[0-9a-f]+|\d+)$/i.test(value.trim()) ? Number(value.trim()) : Number.NaN;
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${name} must be ${min}..${max} (decimal or 0x hex), got "${value}"`);
    return n;
  };
}

interface BusOptions {
  bus: number;
  root: string;
}

const withBus = (cmd: Command) =>
  cmd
    .option("-b, --bus <n>", "I2C bus number (/dev/i2c-N)", intArg("bus", 0, 255), 1)
    .option("--root <dir>", "filesystem root holding dev/", process.env.FIELDRELAY_SYSTEM_ROOT ?? "/");

const hexBytes = (bytes: Uint8Array) => [...bytes].map(hex2).join(" ");

export function i2cCommand(program: Command, io: Io, setExit: (code: number) => void): void {
  const i2c = program.command("i2c").description("probe and poke I2C devices (like i2cdetect/i2cget/i2cset)");

  /** Run against an opened bus; device errors become one line and exit 69. */
  const withOpenBus = async (
    opts: BusOptions,
    body: (bus: Awaited<ReturnType<typeof openI2cBus>>) => Promise<void>,
  ) => {
    try {
      const bus = await openI2cBus(opts.bus, { root: opts.root });
      try {
        await body(bus);
        setExit(ExitCode.ok);
      } finally {
        await bus.close();
      }
    } catch (error) {
      if (!(error instanceof FieldrelayError)) throw error;
      io.err(`fieldrelay: ${describeError(error)}`);
      setExit(ExitCode.unavailable);
    }
  };

  withBus(
    i2c
      .command("scan")
      .description("list the addresses that answer, as i2cdetect does (UU: owned by a kernel driver)"),
  ).action(async (opts: BusOptions) => {
    await withOpenBus(opts, async (bus) => {
      io.out(formatScanGrid(await bus.scan()));
    });
  });

  withBus(
    i2c
      .command("read")
      .description(
        "read bytes from a device, from a register when given (write register, repeated start, read)",
      )
      .argument("<address>", "7-bit address, e.g. 0x76", intArg("address", 0x03, 0x77))
      .argument("[register]", "register to read from", intArg("register", 0, 0xff))
      .option("-n, --length <n>", "bytes to read", intArg("length", 1, I2C_BLOCK_MAX), 1),
  ).action(async (address: number, register: number | undefined, opts: BusOptions & { length: number }) => {
    await withOpenBus(opts, async (bus) => {
      const device = new SmbusDevice(bus, address);
      const data =
        register === undefined
          ? await device.read(opts.length)
          : await device.readBlock(register, opts.length);
      io.out(hexBytes(data));
    });
  });

  withBus(
    i2c
      .command("write")
      .description("write bytes to a device in one transaction (the first byte is usually the register)")
      .argument("<address>", "7-bit address, e.g. 0x76", intArg("address", 0x03, 0x77))
      .argument("<bytes...>", "bytes to write, e.g. 0xf4 0x27"),
  ).action(async (address: number, bytes: string[], opts: BusOptions) => {
    let data: Uint8Array;
    try {
      if (bytes.length > I2C_BLOCK_MAX + 1)
        throw new InvalidArgumentError(`at most ${I2C_BLOCK_MAX + 1} bytes`);
      data = Uint8Array.from(bytes.map(intArg("byte", 0, 0xff)));
    } catch (error) {
      io.err(`fieldrelay: ${(error as Error).message}`);
      setExit(ExitCode.usage);
      return;
    }
    await withOpenBus(opts, async (bus) => {
      await new SmbusDevice(bus, address).write(data);
      io.out(`wrote ${hexBytes(data)} to ${hex2(address)} on ${bus.path}`);
    });
  });
}
