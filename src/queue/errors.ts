import { FieldrelayError } from "../errors/index.ts";

export type QueueErrorCode =
  | "dir-missing"
  | "dir-not-directory"
  | "path-is-directory"
  | "locked"
  | "dir-read-only"
  | "open-failed"
  | "db-missing"
  | "evicted"
  | "closed"
  | "commit-failed"
  | "storage-fault"
  | "schema-too-new";

/**
 * QueueError is a queue that cannot start, cannot be read, or a reading that was evicted before it
 * was captured. The message is one line naming the path and what to do.
 */
export class QueueError extends FieldrelayError {
  readonly code: QueueErrorCode;

  constructor(
    code: QueueErrorCode,
    message: string,
    options: { hint?: string; context?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options);
    this.code = code;
  }
}
