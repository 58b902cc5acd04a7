/**
 * Gpio: the onoff package's API shape (read, write, watch, unwatch, unexport …) over the GPIO
 * character device instead of the retired sysfs interface. A line is an offset on a chip
 * (default gpiochip0) or a line name ("GPIO17"). Values are logical: activeLow is applied by the
 * kernel. debounceTimeout (ms, as in onoff) becomes the kernel's in-kernel debounce.
 */
import { GpioChip, type LineRequest, resolveLine } from "./chip.ts";
import { EdgeWatcher } from "./events.ts";
import type { Edge, LineSettings } from "./settings.ts";
import { EventId } from "./uapi.ts";

export type BinaryValue = 0 | 1;
export type OnoffDirection = "in" | "out" | "high" | "low";
export type ValueCallback = (err: Error | null | undefined, value: BinaryValue) => void;

export interface GpioOptions {
  debounceTimeout?: number;
  activeLow?: boolean;
  bias?: LineSettings["bias"];
  chip?: string | number;
  root?: string;
  consumer?: string;
}

/** onoff-style direction/edge → line settings (pure). */
export function onoffSettings(direction: OnoffDirection, edge: Edge, options: GpioOptions): LineSettings {
  if (direction === "in")
    return {
      direction: "input",
      edge,
      bias: options.bias ?? "as-is",
      activeLow: options.activeLow ?? false,
      debounceUs: Math.round((options.debounceTimeout ?? 0) * 1000),
    };
  return {
    direction: "output",
    activeLow: options.activeLow ?? false,
    outputValues: [direction === "high" ? 1 : 0],
  };
}

export class Gpio {
  readonly chipPath: string;
  readonly offset: number;
  private request: LineRequest;
  private watcher: EdgeWatcher | undefined;
  private readonly callbacks = new Set<ValueCallback>();
  private dir: OnoffDirection;

  constructor(
    line: number | string,
    direction: OnoffDirection,
    private readonly edgeSetting: Edge = "none",
    private readonly options: GpioOptions = {},
  ) {
    const where = resolveLine(line, options.chip, options.root ?? "/");
    this.chipPath = where.chip;
    this.offset = where.offset;
    this.dir = direction;
    const chip = GpioChip.open(where.chip);
    try {
      this.request = chip.request([where.offset], onoffSettings(direction, edgeSetting, options), {
        consumer: options.consumer ?? "fieldrelay",
        eventBufferSize: edgeSetting === "none" ? 0 : 64,
      });
    } finally {
      chip.close();
    }
  }

  /** Whether GPIO character devices exist on this machine. */
  static get accessible(): boolean {
    try {
      GpioChip.open("/dev/gpiochip0").close();
      return true;
    } catch {
      return false;
    }
  }

  static readonly HIGH = 1;
  static readonly LOW = 0;

  readSync(): BinaryValue {
    return this.request.getValues()[0] as BinaryValue;
  }

  async read(): Promise<BinaryValue> {
    return this.readSync();
  }

  writeSync(value: BinaryValue): void {
    this.request.setValues([value ? 1 : 0]);
  }

  async write(value: BinaryValue): Promise<void> {
    this.writeSync(value);
  }

  direction(): "in" | "out" {
    return this.dir === "in" ? "in" : "out";
  }

  edge(): Edge {
    return this.edgeSetting;
  }

  activeLow(): boolean {
    return this.options.activeLow ?? false;
  }

  /** Call back on every edge with the line's new logical value. */
  watch(callback: ValueCallback): void {
    if (this.dir !== "in" || this.edgeSetting === "none")
      throw new Error("watch() needs an input line with an edge (rising, falling or both)");
    this.callbacks.add(callback);
    this.watcher ??= new EdgeWatcher(
      this.request,
      (events) => {
        for (const e of events) {
          const value: BinaryValue = e.id === EventId.RISING_EDGE ? 1 : 0;
          for (const cb of this.callbacks) cb(null, value);
        }
      },
      (error) => {
        for (const cb of this.callbacks) cb(error, 0);
      },
    );
  }

  unwatch(callback?: ValueCallback): void {
    if (callback) this.callbacks.delete(callback);
    else this.callbacks.clear();
    if (this.callbacks.size === 0) void this.stopWatching();
  }

  unwatchAll(): void {
    this.unwatch();
  }

  private async stopWatching(): Promise<void> {
    const watcher = this.watcher;
    this.watcher = undefined;
    await watcher?.stop();
  }

  /** Release the line (onoff's unexport): stops watching and closes the request. */
  async unexport(): Promise<void> {
    this.callbacks.clear();
    await this.stopWatching();
    this.request.close();
  }

  /** Alias of unexport(). */
  close(): Promise<void> {
    return this.unexport();
  }
}
