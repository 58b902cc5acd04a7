export {
  applyEnvOverrides,
  ConfigError,
  type ConfigProblem,
  DEFAULT_CONFIG_PATH,
  formatProblems,
  loadConfig,
  readConfigFile,
  validateConfig,
  zodProblems,
} from "./load.ts";
export { REDACTED, redactConfig, redactUrl } from "./redact.ts";
export {
  type Config,
  configSchema,
  isLoopback,
  type Listen,
  listenAddress,
  mqttUrl,
  parseListen,
  type SensorConfig,
  tls as tlsSchema,
  topicLevel,
  topicPrefix,
} from "./schema.ts";
