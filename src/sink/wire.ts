/** The wire formats the sink reads (src/wire): readings (envelope or batch) and clock messages. */
export {
  type ClockMessage,
  ClockMessageError,
  type DecodedReading,
  decodeClockMessage,
  decodeReadings,
  restamp,
  type WireAnchor as ClockAnchor,
  WireFormatError,
  type WireTimeQuality as TimeQuality,
} from "../wire/index.ts";
