export {
  ConfigError,
  type ConfigProblem,
  DEFAULT_CONFIG_PATH,
  formatProblems,
  loadConfig,
  validateConfig,
} from "./load.ts";
export { REDACTED, redactConfig, redactUrl } from "./redact.ts";
export {
  type Config,
  configSchema,
  isLoopback,
  type Listen,
  parseListen,
  type SensorConfig,
} from "./schema.ts";
