export {
  ConversionTimeoutError,
  CrcError,
  DeviceError,
  DeviceMissingError,
  OutOfRangeError,
  WrongChipError,
} from "./errors.ts";
export * as gpio from "./gpio/index.ts";
export * from "./i2c/index.ts";
export * as libc from "./libc/index.ts";
export { Errno, SyscallError } from "./libc/index.ts";
export * as rtc from "./rtc/index.ts";
