/**
 * The edge-event Worker: blocks in poll(2) on a line request fd and a wake pipe, reads whole
 * gpio_v2_line_event records and posts their bytes to the main thread. Blocking here never blocks
 * the event loop. It exits when the wake pipe becomes readable (closing the request fd would not
 * wake poll). Build note: this file is a separate entrypoint of the compiled binary.
 */
import * as libc from "../libc/index.ts";
import { GPIO_V2_LINE_EVENT_SIZE } from "./uapi.ts";

declare const self: Worker;

interface Start {
  fd: number;
  wakeFd: number;
  path: string;
}

self.onmessage = (message: MessageEvent<Start>) => {
  const { fd, wakeFd, path } = message.data;
  const buf = new Uint8Array(new ArrayBuffer(GPIO_V2_LINE_EVENT_SIZE * 16));
  try {
    for (;;) {
      const [events, wake] = libc.poll(
        [
          { fd, events: libc.POLLIN },
          { fd: wakeFd, events: libc.POLLIN },
        ],
        -1,
      );
      if (wake) break;
      if (events! & (libc.POLLERR | libc.POLLHUP))
        throw new Error(`${path}: line request fd reported an error`);
      if (events! & libc.POLLIN) {
        const n = libc.read(fd, buf, path);
        if (n > 0) self.postMessage({ bytes: buf.slice(0, n) });
      }
    }
    self.postMessage({ done: true });
  } catch (error) {
    self.postMessage({ error: error instanceof Error ? error.message : String(error) });
  }
};
