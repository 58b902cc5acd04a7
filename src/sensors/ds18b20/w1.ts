/**
 * The Linux w1_therm sysfs interface for DS18B20 probes (<root>/sys/bus/w1/devices/28-<serial>/), and
 * the pure parsing of what it returns. w1_slave holds two lines, the scratchpad with the
 * kernel's CRC verdict and the same bytes with the temperature in m°C:
 *
 *   72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
 *   72 01 4b 46 7f ff 0e 10 57 t=23125
 *
 * `temperature` (newer kernels) holds only m°C; the kernel fails the read on a CRC error.
 * Bad readings, each an error and never data: verdict NO (or a CRC we recompute that does not
 * match), an all-zero scratchpad (a shorted bus passes the CRC with t=0), 85 °C (the power-on
 * value: the conversion never ran, usually a power or parasite-mode problem), and anything
 * outside the chip's -55..125 °C.
 */

export const FAMILY_PREFIX = "28-";
export const ID_PATTERN = /^28-[0-9a-f]{12}$/;
export const POWER_ON_MILLI_C = 85000;

export type W1Verdict =
  | { ok: true; milli_c: number }
  | { ok: false; reason: "crc" | "format" | "zero" | "power-on" | "range"; detail: string };

/** Dallas/Maxim CRC-8 (x^8 + x^5 + x^4 + 1, reflected: 0x8C), init 0, as the scratchpad's byte 9. */
export function dallasCrc8(bytes: number[]): number {
  let crc = 0;
  for (const byte of bytes) {
    let b = byte;
    for (let i = 0; i < 8; i++) {
      const mix = (crc ^ b) & 0x01;
      crc >>= 1;
      if (mix) crc ^= 0x8c;
      b >>= 1;
    }
  }
  return crc;
}

/** Judge a millidegree value: the power-on value and out-of-range values are bad readings. */
export function judgeMilliC(milli_c: number): W1Verdict {
  if (milli_c === POWER_ON_MILLI_C)
    return {
      ok: false,
      reason: "power-on",
      detail: "85 °C is the power-on value: the conversion did not run",
    };
  if (milli_c < -55000 || milli_c > 125000)
    return { ok: false, reason: "range", detail: `${milli_c / 1000} °C is outside -55..125 °C` };
  return { ok: true, milli_c };
}

export function parseW1Slave(text: string): W1Verdict {
  const lines = text.trim().split("\n");
  const first = /^((?:[0-9a-f]{2} ){9}): crc=([0-9a-f]{2}) (YES|NO)$/i.exec(lines[0]?.trim() ?? "");
  const second = /t=(-?\d+)$/.exec(lines[1]?.trim() ?? "");
  if (!first || !second)
    return { ok: false, reason: "format", detail: `unexpected w1_slave content ${JSON.stringify(text)}` };
  const bytes = first[1]!
    .trim()
    .split(" ")
    .map((h) => Number.parseInt(h, 16));
  if (first[3]!.toUpperCase() !== "YES" || dallasCrc8(bytes.slice(0, 8)) !== bytes[8])
    return { ok: false, reason: "crc", detail: `CRC check failed on scratchpad ${first[1]!.trim()}` };
  if (bytes.every((b) => b === 0))
    return {
      ok: false,
      reason: "zero",
      detail: "the scratchpad is all zeros (data line shorted to ground?)",
    };
  return judgeMilliC(Number(second[1]));
}

export function parseTemperatureFile(text: string): W1Verdict {
  const t = text.trim();
  if (!/^-?\d+$/.test(t))
    return { ok: false, reason: "format", detail: `unexpected temperature content ${JSON.stringify(text)}` };
  return judgeMilliC(Number(t));
}

/** Which probe to read: the configured id, or the only one present. */
export function chooseProbe(
  present: string[],
  id: string | undefined,
): { ok: true; id: string } | { ok: false; reason: "none" | "ambiguous" | "absent" } {
  const probes = present.filter((name) => ID_PATTERN.test(name)).sort();
  if (id !== undefined) return probes.includes(id) ? { ok: true, id } : { ok: false, reason: "absent" };
  if (probes.length === 1) return { ok: true, id: probes[0]! };
  return { ok: false, reason: probes.length === 0 ? "none" : "ambiguous" };
}
