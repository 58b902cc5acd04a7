import type { Anchor, AnchorStore } from "../../src/clock/types.ts";

/** MemoryAnchors is an AnchorStore in RAM, standing in for the queue database in clock tests. */
export class MemoryAnchors implements AnchorStore {
  readonly saved: Anchor[] = [];

  saveAnchor(anchor: Anchor, drop: readonly Anchor[] = []): void {
    this.saved.push({ ...anchor });
    const gone = new Set(drop.map((a) => `${a.bootId}/${a.monoNs}/${a.source}`));
    if (gone.size === 0) return;
    const kept = this.saved.filter((a) => !gone.has(`${a.bootId}/${a.monoNs}/${a.source}`));
    this.saved.splice(0, this.saved.length, ...kept);
  }

  anchorsFor(bootId: string): Anchor[] {
    return this.saved.filter((a) => a.bootId === bootId).map((a) => ({ ...a }));
  }
}
