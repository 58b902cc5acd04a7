/**
 * decodeReadings: the one call a consumer (the sink, a test subscriber) needs for a message on a
 * stream topic. It accepts the single-reading JSON envelope and the batch (src/wire/batch.ts) and
 * returns one DecodedReading per reading, in the order they travelled.
 */
import { BATCH_CONTENT_TYPE, decodeBatch, looksLikeZlib } from "./batch.ts";
import { WireFormatError } from "./errors.ts";
import { checkReading, type DecodedReading } from "./reading.ts";

/** decodeSingle parses one JSON envelope. */
export function decodeSingle(payload: Uint8Array | string): DecodedReading {
  const text = typeof payload === "string" ? payload : Buffer.from(payload).toString("utf8");
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new WireFormatError("envelope JSON", (error as Error).message, error);
  }
  return checkReading(doc, "envelope");
}

/**
 * decodeReadings decodes a single envelope or a batch. contentType (MQTT 5) decides when given and
 * known; otherwise the first byte does: "{" (after whitespace) is an envelope, a zlib header a batch.
 */
export function decodeReadings(payload: Uint8Array, contentType?: string): DecodedReading[] {
  const type = contentType?.split(";")[0]?.trim().toLowerCase();
  if (type === BATCH_CONTENT_TYPE) return decodeBatch(payload);
  if (type === "application/json") return [decodeSingle(payload)];
  let i = 0;
  while (
    i < payload.length &&
    (payload[i] === 0x20 || payload[i] === 0x0a || payload[i] === 0x0d || payload[i] === 0x09)
  )
    i++;
  if (payload[i] === 0x7b) return [decodeSingle(payload)];
  if (looksLikeZlib(payload)) return decodeBatch(payload);
  throw new WireFormatError(
    "payload",
    payload.length === 0
      ? "empty"
      : `neither a JSON envelope nor a zlib batch (first byte 0x${payload[0]!.toString(16).padStart(2, "0")})`,
  );
}
