export { type CommitDecision, type CommitState, commitDecision } from "./batching.ts";
export { type DeadLetter, type DeadLetterFile, openDeadLetterFile } from "./dead-letter.ts";
export { QueueError, type QueueErrorCode } from "./errors.ts";
export { chooseEvictions, type EvictionChoice, type EvictionNeed, type PriorityClass } from "./eviction.ts";
export { openQueueReader, type QueueFileStats, type QueueReader, type StoredReading } from "./reader.ts";
export { MIGRATIONS, payloadBytes } from "./schema.ts";
export { openQueue, type QueueOptions, SqliteQueue } from "./sqlite-queue.ts";
export type { CaptureResult, FieldValue, QoS, Queue, QueuedReading, QueueStats, Reading } from "./types.ts";
