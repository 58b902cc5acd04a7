import type { Anchor, AnchorStore } from "../../src/clock/types.ts";

/** MemoryAnchors is an AnchorStore in RAM, standing in for the queue database in clock tests. */
export class MemoryAnchors implements AnchorStore {
  readonly saved: Anchor[] = [];

  saveAnchor(anchor: Anchor): void {
    this.saved.push({ ...anchor });
  }

  anchorsFor(bootId: string): Anchor[] {
    return this.saved.filter((a) => a.bootId === bootId).map((a) => ({ ...a }));
  }
}
