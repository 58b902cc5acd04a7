export {
  chipPath,
  chipPaths,
  DEFAULT_CONSUMER,
  findLine,
  GpioChip,
  LineRequest,
  resolveLine,
} from "./chip.ts";
export {
  GpioChipMissing,
  GpioLineBusy,
  GpioLineNotFound,
  GpioLineOutOfRange,
  GpioNotAChip,
} from "./errors.ts";
export { type EdgeListener, EdgeWatcher, workerSpecifier } from "./events.ts";
export {
  type BinaryValue,
  Gpio,
  type GpioOptions,
  type OnoffDirection,
  onoffSettings,
  type ValueCallback,
} from "./onoff.ts";
export { SeqnoTracker } from "./sequence.ts";
export {
  type Bias,
  type Direction,
  type Drive,
  describeFlags,
  type Edge,
  type LineSettings,
  lineConfig,
  packBits,
  settingsFlags,
  unpackBits,
} from "./settings.ts";
export { type ChipInfo, EventId, type LineEvent, LineFlag, type LineInfo } from "./uapi.ts";
