export { ModelBus } from "./i2c/model-bus.ts";
export type { I2cBus, I2cDeviceModel } from "./i2c/types.ts";
export * as libc from "./libc/index.ts";
export { SyscallError } from "./libc/index.ts";
