/**
 * A fake 1-Wire sysfs tree: <root>/sys/bus/w1/devices/28-<serial>/{w1_slave,temperature} with the
 * content the kernel's w1_therm writes, including a real scratchpad and its Dallas CRC.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

function dallasCrc8(bytes: number[]): number {
  let crc = 0;
  for (const byte of bytes) {
    for (let i = 0, b = byte; i < 8; i++, b >>= 1) {
      const mix = (crc ^ b) & 1;
      crc >>= 1;
      if (mix) crc ^= 0x8c;
    }
  }
  return crc;
}

/** The 9 scratchpad bytes for a temperature (12-bit: 1/16 °C per LSB), TH/TL/config at defaults. */
export function scratchpad(milli_c: number): number[] {
  const raw = Math.round(milli_c / 62.5) & 0xffff;
  const bytes = [raw & 0xff, raw >> 8, 0x4b, 0x46, 0x7f, 0xff, 0x0c, 0x10];
  return [...bytes, dallasCrc8(bytes)];
}

/** w1_slave text as w1_therm prints it; `corrupt` flips a data bit so the CRC fails ("NO"). */
export function w1SlaveText(milli_c: number, options: { corrupt?: boolean; bytes?: number[] } = {}): string {
  const bytes = options.bytes ?? scratchpad(milli_c);
  if (options.corrupt) bytes[0] = bytes[0]! ^ 0x01;
  const hex = bytes.map((b) => b.toString(16).padStart(2, "0")).join(" ");
  const crcOk = dallasCrc8(bytes.slice(0, 8)) === bytes[8];
  return `${hex} : crc=${bytes[8]!.toString(16).padStart(2, "0")} ${crcOk ? "YES" : "NO"}\n${hex} t=${milli_c}\n`;
}

export function w1DevicesDir(root: string): string {
  return join(root, "sys", "bus", "w1", "devices");
}

/** Create (or overwrite) a probe's files under root. */
export function writeProbe(
  root: string,
  id: string,
  milli_c: number,
  options: { corrupt?: boolean; bytes?: number[] } = {},
): void {
  const dir = join(w1DevicesDir(root), id);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "w1_slave"), w1SlaveText(milli_c, options));
  writeFileSync(join(dir, "temperature"), `${milli_c}\n`);
}

export function removeProbe(root: string, id: string): void {
  rmSync(join(w1DevicesDir(root), id), { recursive: true, force: true });
}
