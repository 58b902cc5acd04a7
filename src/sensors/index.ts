export { driverNames, findDriver } from "./registry.ts";
export type { FieldValue, Sample, Sensor, SensorContext, SensorDriver, StampAt } from "./types.ts";
