import { openI2cBus } from "./bus.ts";
import type { I2cBus } from "./types.ts";

/** A bus a driver may use, and how to give it back (closes it only if the driver opened it). */
export interface I2cLease {
  bus: I2cBus;
  release(): Promise<void>;
}

/**
 * Get bus N from `open` (a shared bus owned by whoever supplied it) or else open
 * <root>/dev/i2c-N, owned by the lease. Whoever opens a bus closes it.
 */
export async function leaseI2cBus(
  busNumber: number,
  options: { root: string; open?: ((bus: number) => Promise<I2cBus>) | undefined },
): Promise<I2cLease> {
  if (options.open) return { bus: await options.open(busNumber), release: async () => {} };
  const bus = await openI2cBus(busNumber, { root: options.root });
  return { bus, release: () => bus.close() };
}
