export { i2cBusPath, LinuxI2cBus, type OpenI2cOptions, openI2cBus, openPromisified } from "./bus.ts";
export {
  classifyI2cError,
  hex2,
  I2cAdapterMissing,
  I2cAddressBusy,
  I2cIoctlsUnsupported,
  I2cNack,
  I2cNotAdapter,
} from "./errors.ts";
export { type I2cLease, leaseI2cBus } from "./lease.ts";
export { ModelBus } from "./model-bus.ts";
export {
  formatScanGrid,
  type ProbeMode,
  type ProbeResult,
  type ProbingBus,
  probeMode,
  type ScanResult,
  scanBus,
} from "./scan.ts";
export { I2C_BLOCK_MAX, PromisifiedBus, SmbusDevice } from "./smbus.ts";
export type { I2cBus, I2cDeviceModel } from "./types.ts";
