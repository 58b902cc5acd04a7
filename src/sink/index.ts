export { type Classified, classifyMessage, type ReadingRow } from "./classify.ts";
export {
  DEFAULT_SINK_CONFIG_PATH,
  loadSinkConfig,
  redactSinkConfig,
  SINK_ENV_PREFIX,
  type SinkConfig,
  type SinkConfigInput,
  sinkConfigSchema,
  validateSinkConfig,
} from "./config.ts";
export { type SinkHealthBody, type SinkStatus, sinkHealth } from "./health.ts";
export { MIGRATIONS, migrate, SCHEMA_VERSION, SchemaError, tableNames } from "./schema.ts";
export { type Sink, SinkDatabaseError, type SinkOptions, startSink } from "./sink.ts";
export { type BatchResult, createPgStore, mergeAnchors, type Store, type Work } from "./store.ts";
export { createWriter, isDataError, type Pending, type Writer } from "./writer.ts";
