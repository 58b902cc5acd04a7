export * as libc from "./libc/index.ts";
export { SyscallError } from "./libc/index.ts";
