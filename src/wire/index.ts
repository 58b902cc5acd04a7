export * from "./batch.ts";
export * from "./clock.ts";
export * from "./decode.ts";
export * from "./errors.ts";
export * from "./reading.ts";
