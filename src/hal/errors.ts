/**
 * DeviceError: a device answered, but what it said cannot be a measurement — a wrong chip id, a
 * failed CRC, a raw value outside what the chip can produce, a conversion that never finished.
 * Such a read yields an error, never data. `device` names the chip and where it sits.
 */
import { FieldrelayError } from "../errors/index.ts";

export class DeviceError extends FieldrelayError {
  constructor(
    readonly device: string,
    message: string,
    options: { hint?: string; context?: Record<string, unknown> } = {},
  ) {
    super(`${device}: ${message}`, { ...options, context: { device, ...options.context } });
  }
}

/** The chip at the address is not the one configured (chip-id register mismatch). */
export class WrongChipError extends DeviceError {}

/** A CRC over received data did not match: the bytes were corrupted on the wire. */
export class CrcError extends DeviceError {}

/** A raw value the chip cannot produce in a valid measurement (e.g. BME280 0x80000 "skipped"). */
export class OutOfRangeError extends DeviceError {}

/** A conversion did not complete within its time budget. */
export class ConversionTimeoutError extends DeviceError {}

/** No such device on the bus or in sysfs (the probe is absent). */
export class DeviceMissingError extends DeviceError {}
