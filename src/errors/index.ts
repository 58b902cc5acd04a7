/**
 * FieldrelayError is the root of every error fieldrelay raises on purpose. It carries the
 * context a person needs to act (which file, which key, which syscall) and a hint saying what
 * to do about it. Errors that are not FieldrelayError are bugs.
 */
export class FieldrelayError extends Error {
  readonly hint: string | undefined;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(
    message: string,
    options: { hint?: string; context?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
    this.context = options.context ?? {};
  }

  /** One line for a terminal or a log: the message, then the hint after an em dash. */
  describe(): string {
    return this.hint ? `${this.message} — ${this.hint}` : this.message;
  }
}

/** UsageError is a wrong command line: unknown command, unknown flag, bad flag value (exit 64). */
export class UsageError extends FieldrelayError {}

/** Describe any thrown value in one line, preferring the typed description. */
export function describeError(error: unknown): string {
  if (error instanceof FieldrelayError) return error.describe();
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Exit codes from sysexits.h, which service managers and shell scripts already understand. */
export const ExitCode = {
  ok: 0,
  usage: 64,
  dataErr: 65,
  noInput: 66,
  unavailable: 69,
  software: 70,
  cantCreate: 73,
  ioErr: 74,
  config: 78,
} as const;
