/**
 * How the GPIO drivers reach the kernel, behind two small seams so the drivers can be tested
 * with fakes: a requested line to read, and a source of edge events.
 */
import * as z from "zod";
import {
  type EdgeListener,
  EdgeWatcher,
  GpioChip,
  type LineSettings,
  resolveLine,
} from "../../hal/gpio/index.ts";

export interface InputLine {
  read(): number;
  close(): Promise<void>;
}

export interface EdgeSource {
  close(): Promise<void>;
}

export type OpenInputLine = (
  root: string,
  line: number | string,
  chip: string | number | undefined,
  settings: LineSettings,
) => Promise<InputLine>;
export type OpenEdgeSource = (
  root: string,
  line: number | string,
  chip: string | number | undefined,
  settings: LineSettings,
  listener: EdgeListener,
) => Promise<EdgeSource>;

function request(
  root: string,
  line: number | string,
  chip: string | number | undefined,
  settings: LineSettings,
  eventBufferSize = 0,
) {
  const where = resolveLine(line, chip, root);
  const opened = GpioChip.open(where.chip);
  try {
    return opened.request([where.offset], settings, { eventBufferSize });
  } finally {
    opened.close();
  }
}

export const openKernelInputLine: OpenInputLine = async (root, line, chip, settings) => {
  const req = request(root, line, chip, settings);
  return { read: () => req.getValues()[0]!, close: async () => req.close() };
};

/** The kernel queues up to this many events while the Worker is not reading; beyond, they are lost (and counted). */
export const EVENT_BUFFER_SIZE = 1024;

export const openKernelEdgeSource: OpenEdgeSource = async (root, line, chip, settings, listener) => {
  const req = request(root, line, chip, settings, EVENT_BUFFER_SIZE);
  const watcher = new EdgeWatcher(req, listener);
  return {
    close: async () => {
      await watcher.stop();
      req.close();
    },
  };
};

/** The [[sensor]] keys both GPIO drivers share. */
export const lineOptions = {
  chip: z.union([z.string().min(1), z.int().min(0)]).optional(),
  line: z.union([z.int().min(0).max(1023), z.string().min(1)], {
    error: 'must be a line offset (17) or a line name ("GPIO17")',
  }),
  bias: z.enum(["as-is", "disable", "pull-up", "pull-down"], {
    error: 'must be "as-is", "disable", "pull-up" or "pull-down"',
  }),
  active_low: z.boolean().default(false),
  debounce_us: z.int().min(0).max(1_000_000).default(0),
};
