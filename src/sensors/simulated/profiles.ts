/**
 * Device profiles for the simulator, shaped like field-proven ones: each value is
 * base + slow sine drift + Gaussian noise, clamped to a plausible range. failureRate is the
 * chance per read that an anomaly spike is injected.
 */
export interface ValueProfile {
  base: number;
  drift: number;
  noise: number;
  min: number;
  max: number;
  spike: number;
  decimals: number;
}

export interface DeviceProfile {
  defaultIntervalS: number;
  failureRate: number;
  values: Record<string, ValueProfile>;
}

const v = (
  base: number,
  drift: number,
  noise: number,
  min: number,
  max: number,
  spike: number,
  decimals = 2,
) => ({
  base,
  drift,
  noise,
  min,
  max,
  spike,
  decimals,
});

export const profiles = {
  sensor: {
    defaultIntervalS: 10,
    failureRate: 0.005,
    values: {
      cpu_pct: v(8, 3, 1, 0, 100, 60),
      temperature_c: v(42, 3, 0.4, -20, 95, 35),
      memory_pct: v(30, 5, 1, 0, 100, 50),
    },
  },
  camera: {
    defaultIntervalS: 5,
    failureRate: 0.01,
    values: {
      cpu_pct: v(65, 10, 4, 0, 100, 35),
      temperature_c: v(61, 4, 0.6, -20, 95, 25),
      memory_pct: v(55, 8, 2, 0, 100, 40),
    },
  },
  gateway: {
    defaultIntervalS: 10,
    failureRate: 0.005,
    values: {
      cpu_pct: v(25, 8, 3, 0, 100, 60),
      temperature_c: v(48, 3, 0.5, -20, 95, 30),
      throughput_kbps: v(850, 300, 60, 0, 100_000, 5000, 1),
    },
  },
  controller: {
    defaultIntervalS: 2,
    failureRate: 0.002,
    values: {
      cpu_pct: v(15, 4, 1.5, 0, 100, 70),
      temperature_c: v(45, 2, 0.3, -20, 95, 35),
      loop_latency_ms: v(4, 1, 0.4, 0, 1000, 80),
    },
  },
} satisfies Record<string, DeviceProfile>;

export type ProfileName = keyof typeof profiles;
export const profileNames = Object.keys(profiles) as ProfileName[];
