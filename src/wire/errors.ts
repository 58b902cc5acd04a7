import { FieldrelayError } from "../errors/index.ts";

/**
 * WireFormatError: a payload is not a reading envelope nor a batch fieldrelay can decode. `what`
 * names the part that is wrong (e.g. "readings[3].values", "zlib stream"), so a consumer can log
 * one line that says which message and where it broke.
 */
export class WireFormatError extends FieldrelayError {
  constructor(
    readonly what: string,
    detail: string,
    cause?: unknown,
  ) {
    super(`malformed fieldrelay payload: ${what}: ${detail}`, {
      hint: 'the publisher and this consumer disagree on the wire format; see README "Wire format"',
      context: { what },
      cause,
    });
  }
}
