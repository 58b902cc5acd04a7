import { Errno, SyscallError } from "../libc/index.ts";
import type { I2cBus, I2cDeviceModel } from "./types.ts";

/**
 * ModelBus is an I2cBus whose devices are models: each transaction goes to the model at its
 * address; an empty address NACKs (ENXIO) exactly as the kernel reports it. It records every
 * transaction so tests can assert what a driver did on the wire.
 */
export class ModelBus implements I2cBus {
  readonly log: Array<{ address: number; write: number[]; readLength: number }> = [];
  private readonly devices = new Map<number, I2cDeviceModel>();

  constructor(
    readonly path = "/dev/i2c-1",
    devices: Record<number, I2cDeviceModel> = {},
  ) {
    for (const [address, model] of Object.entries(devices)) this.devices.set(Number(address), model);
  }

  attach(address: number, model: I2cDeviceModel): void {
    this.devices.set(address, model);
  }

  detach(address: number): void {
    this.devices.delete(address);
  }

  async transfer(address: number, write: Uint8Array, readLength: number): Promise<Uint8Array> {
    this.log.push({ address, write: [...write], readLength });
    const model = this.devices.get(address);
    if (!model)
      throw new SyscallError(
        "ioctl(I2C_RDWR)",
        Errno.ENXIO,
        this.path,
        `no device acknowledged at 0x${address.toString(16)}`,
      );
    return model.transfer(write, readLength);
  }
}
