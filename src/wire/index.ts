export * from "./batch.ts";
export * from "./decode.ts";
export * from "./errors.ts";
export * from "./reading.ts";
