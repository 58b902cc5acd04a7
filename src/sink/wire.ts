/** The wire formats the sink reads; switches to src/wire when #13 and #15 land. */
export {
  type ClockAnchor,
  type ClockMessage,
  type DecodedReading,
  decodeClockMessage,
  decodeReadings,
  restamp,
  type TimeQuality,
  WireFormatError,
} from "./interim-wire.ts";
