/**
 * I2cBus is the whole I²C contract, as in periph.io's Tx: write then read in ONE transaction
 * (a repeated start between them), mapped 1:1 onto the I2C_RDWR ioctl. SMBus-style helpers are
 * built on it. A driver receives a bus and never opens or closes one.
 *
 * Failures reject with SyscallError: ENXIO/EREMOTEIO for a NACK, EBUSY when a kernel driver owns
 * the address, ETIMEDOUT for a stuck bus.
 */
export interface I2cBus {
  /** Write `write` (may be empty) then read `readLength` bytes (may be 0) from `address`. */
  transfer(address: number, write: Uint8Array, readLength: number): Promise<Uint8Array>;
}

/**
 * I2cDeviceModel is a register-level model of a chip, used by tests and demos in place of the
 * hardware (periph's i2ctest). It answers one transaction synchronously or throws SyscallError.
 */
export interface I2cDeviceModel {
  transfer(write: Uint8Array, readLength: number): Uint8Array;
}
