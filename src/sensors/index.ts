export { driverNames, findDriver } from "./registry.ts";
export type { FieldValue, Sample, Sensor, SensorContext, SensorDriver } from "./types.ts";
