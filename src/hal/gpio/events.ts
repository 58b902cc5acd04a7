/**
 * EdgeWatcher delivers a line request's edge events (kernel timestamps, seqno) to a callback,
 * reading them in a Worker that blocks in poll(2). Events are numbered by the kernel; gaps
 * (buffer overflow) are counted as lost by SeqnoTracker. stop() wakes the Worker through a pipe.
 */
import * as libc from "../libc/index.ts";
import type { LineRequest } from "./chip.ts";
import { SeqnoTracker } from "./sequence.ts";
import { decodeLineEvents, type LineEvent } from "./uapi.ts";

/**
 * Where the Worker's module is. From source it sits beside this file. In a compiled binary every
 * entry point is embedded under the entry points' common root (src/), and bundled code sees the
 * executable's own URL as import.meta.url, so the worker is named relative to that root. The build
 * must list src/hal/gpio/event-worker.ts as an extra entry point.
 */
export function workerSpecifier(metaUrl = import.meta.url): string {
  return metaUrl.includes("/$bunfs/")
    ? "./hal/gpio/event-worker.ts"
    : new URL("./event-worker.ts", metaUrl).href;
}

export type EdgeListener = (events: LineEvent[], lost: number) => void;

export class EdgeWatcher {
  readonly tracker = new SeqnoTracker();
  private readonly worker: Worker;
  private readonly wake: [number, number];
  private readonly stopped: Promise<void>;
  private resolveStopped!: () => void;

  constructor(
    readonly request: LineRequest,
    listener: EdgeListener,
    onError: (error: Error) => void = () => {},
  ) {
    this.wake = libc.pipe();
    this.stopped = new Promise((resolve) => {
      this.resolveStopped = resolve;
    });
    this.worker = new Worker(workerSpecifier());
    this.worker.onmessage = (
      message: MessageEvent<{ bytes?: Uint8Array; error?: string; done?: boolean }>,
    ) => {
      const { bytes, error, done } = message.data;
      if (bytes) {
        const events = decodeLineEvents(bytes);
        const lost = events.reduce((sum, e) => sum + this.tracker.observe(e), 0);
        listener(events, lost);
      }
      if (error) onError(new Error(error));
      if (done || error) this.resolveStopped();
    };
    this.worker.postMessage({ fd: request.fd, wakeFd: this.wake[0], path: request.chipPath });
  }

  /** Wake the Worker, wait for it to leave poll(), then release the pipe. */
  async stop(): Promise<void> {
    libc.write(this.wake[1], Uint8Array.of(1));
    await this.stopped;
    this.worker.terminate();
    libc.close(this.wake[0]);
    libc.close(this.wake[1]);
  }
}
