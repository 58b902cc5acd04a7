/**
 * Loss detection for edge events. The kernel numbers a request's events (seqno) and each line's
 * events (line_seqno) from 1, in u32; when its event buffer (event_buffer_size) overflows it
 * drops events and the numbers skip. A skip of n means n edges happened that nobody will ever
 * see: count them, never invent them.
 */
import type { LineEvent } from "./uapi.ts";

/** SeqnoTracker counts events lost per line from line_seqno gaps. */
export class SeqnoTracker {
  private readonly last = new Map<number, number>();
  lost = 0;

  /** Returns how many events were lost just before this one. */
  observe(event: LineEvent): number {
    const previous = this.last.get(event.offset) ?? 0;
    this.last.set(event.offset, event.line_seqno);
    // u32 arithmetic: a wrap from 0xffffffff to 0 (or 1) is not a loss of four billion events.
    const gap = (event.line_seqno - previous - 1) >>> 0;
    const lost = gap > 0x7fffffff ? 0 : gap;
    this.lost += lost;
    return lost;
  }
}
