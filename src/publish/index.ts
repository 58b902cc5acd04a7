/**
 * publish: the MQTT side of fieldrelay. createPublisher drains a Queue to the broker, owns
 * reconnection (backoff with full jitter), keeps the retained status topic, and carries the
 * remote-command transport (subscribe/send).
 */

export { backoffDelayS } from "./backoff.ts";
export { Batcher, type BatchItem, type BatchLimits, holdCap, splitHalves } from "./batcher.ts";
export { brokerOptions } from "./broker-url.ts";
export {
  buildEnvelope,
  type Envelope,
  encodeEnvelope,
  STATUS_OFFLINE,
  STATUS_ONLINE,
  statusTopic,
  streamTopic,
} from "./envelope.ts";
export { PublisherNotConnectedError, PublishTlsFileError } from "./errors.ts";
export {
  createPublisher,
  type MqttConfig,
  type Publisher,
  type PublisherOptions,
  type SendOptions,
  type StopResult,
} from "./publisher.ts";
export { ManualScheduler } from "./scheduler.ts";
export type { PublisherStats } from "./stats.ts";
export type { MessageHandler } from "./subscriptions.ts";
export { loadTls, type TlsConfig, type TlsConnectOptions } from "./tls.ts";
export {
  availableTokens,
  createTokenBucket,
  msUntilToken,
  spendTokens,
  type TokenBucket,
  takeTokens,
} from "./token-bucket.ts";
export { topicMatches } from "./topic-filter.ts";
