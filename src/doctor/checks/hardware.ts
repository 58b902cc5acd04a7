/**
 * The hardware the config names: I2C buses enabled and every I2C sensor answering at its address
 * (EBUSY explained when a kernel driver owns it), GPIO chips and configured lines present, 1-Wire
 * probes present, and each device node openable by the service user. A probe is one 1-byte read:
 * it changes nothing on any chip fieldrelay supports.
 */
import { readdirSync, readlinkSync } from "node:fs";
import { basename } from "node:path";
import type { SensorConfig } from "../../config/index.ts";
import { chipPaths, GpioChip, GpioLineNotFound, resolveLine } from "../../hal/gpio/index.ts";
import { i2cBusPath, type LinuxI2cBus, openI2cBus } from "../../hal/i2c/index.ts";
import { findDriver } from "../../sensors/index.ts";
import { accessProblem, type ServiceUser, serviceUser } from "../access.ts";
import { existsSync, under } from "../files.ts";
import { i2cAdapterVerdict, i2cProbeVerdict } from "../i2c-verdict.ts";
import { type CheckResult, type DoctorContext, fail, ok, warn } from "../types.ts";

const hex = (n: number) => `0x${n.toString(16).padStart(2, "0")}`;

interface ParsedSensor {
  entry: SensorConfig;
  options: Record<string, unknown>;
}

/** Configured sensors with their driver options (loadConfig has already filled in the defaults). */
function parsedSensors(ctx: DoctorContext): ParsedSensor[] {
  return (ctx.config?.sensor ?? [])
    .filter((entry) => findDriver(entry.driver) !== undefined)
    .map((entry) => ({ entry, options: entry as Record<string, unknown> }));
}

async function unitUser(ctx: DoctorContext): Promise<ServiceUser> {
  const props = await ctx.showUnit(ctx.unit, ["User", "SupplementaryGroups"]);
  const name = props?.User || "fieldrelay";
  return serviceUser(ctx.root, name, (props?.SupplementaryGroups ?? "").split(/\s+/).filter(Boolean));
}

/** The kernel driver bound to an I2C client (sys/bus/i2c/devices/<bus>-00<addr>/driver), if any. */
function i2cDriver(ctx: DoctorContext, bus: number, address: number): string | undefined {
  const link = under(ctx.root, `/sys/bus/i2c/devices/${bus}-${address.toString(16).padStart(4, "0")}/driver`);
  try {
    return basename(readlinkSync(link));
  } catch {
    return undefined;
  }
}

export async function i2cCheck(ctx: DoctorContext): Promise<CheckResult[]> {
  const devices = parsedSensors(ctx)
    .filter((s) => typeof s.options.bus === "number" && typeof s.options.address === "number")
    .map((s) => ({
      name: s.entry.name,
      what: `sensor ${s.entry.name} (${s.entry.driver})`,
      bus: s.options.bus as number,
      address: s.options.address as number,
    }));
  if (devices.length === 0) return [ok("i2c", "no I2C sensors configured")];
  const user = await unitUser(ctx);
  const results: CheckResult[] = [];
  const buses = [...new Set(devices.map((d) => d.bus))];
  // A device a kernel driver owns is judged from sysfs; a bus is opened only to probe the others.
  const owner = new Map(devices.map((d) => [d, i2cDriver(ctx, d.bus, d.address)]));
  const toProbe = new Set(devices.filter((d) => owner.get(d) === undefined).map((d) => d.bus));
  const usable = new Set<number>();
  const open = new Map<number, LinuxI2cBus>();
  try {
    for (const bus of buses) {
      const path = i2cBusPath(bus, ctx.root);
      const id = `i2c.bus${bus}`;
      if (!existsSync(path)) {
        results.push(
          fail(
            id,
            `${path} does not exist: I2C bus ${bus} is not enabled`,
            bus === 1
              ? "add dtparam=i2c_arm=on to /boot/firmware/config.txt (overlays/config.txt) and reboot"
              : `enable I2C bus ${bus} in /boot/firmware/config.txt and reboot`,
          ),
        );
        continue;
      }
      const denied = accessProblem(path, user);
      if (denied) {
        results.push(
          fail(
            id,
            denied,
            `install deploy/device/udev/60-fieldrelay.rules and add ${user.name} to group i2c`,
          ),
        );
        continue;
      }
      usable.add(bus);
      if (!toProbe.has(bus)) {
        results.push(ok(id, `${path} present, ${user.name} can open it`));
        continue;
      }
      // Opening asks the adapter what it can do (I2C_FUNCS): a node that is not i2c-dev's, or an
      // emulator that drops I2C ioctls, fails here, for the bus, before any address is blamed.
      try {
        open.set(bus, await openI2cBus(bus, { root: ctx.root }));
        results.push(ok(id, `${path} is an I2C adapter, ${user.name} can open it`));
      } catch (error) {
        results.push(i2cAdapterVerdict(id, path, error));
      }
    }
    for (const d of devices) {
      if (!usable.has(d.bus)) continue;
      const id = `i2c.${d.name}`;
      const driver = owner.get(d);
      if (driver) {
        results.push(
          warn(
            id,
            `${d.what}: ${hex(d.address)} on bus ${d.bus} is owned by the kernel driver ${driver}, so fieldrelay's direct reads get EBUSY`,
            "remove the dtoverlay that binds it (for a DS3231 keep the overlay and use rtc.mode, not a sensor)",
          ),
        );
        continue;
      }
      const bus = open.get(d.bus);
      if (!bus) continue; // the adapter's own failure is reported on i2c.busN
      let error: unknown;
      try {
        await bus.transfer(d.address, new Uint8Array(0), 1);
      } catch (e) {
        error = e;
      }
      results.push(i2cProbeVerdict({ ...d, id, path: bus.path }, error));
    }
  } finally {
    for (const bus of open.values()) await bus.close();
  }
  return results;
}

export async function gpioCheck(ctx: DoctorContext): Promise<CheckResult[]> {
  const lines = parsedSensors(ctx).filter((s) => s.options.line !== undefined);
  const chips = chipPaths(ctx.root);
  if (lines.length === 0)
    return [
      ok("gpio", `no GPIO sensors configured (${chips.length} chip${chips.length === 1 ? "" : "s"} present)`),
    ];
  if (chips.length === 0)
    return [
      fail(
        "gpio.chips",
        `no ${under(ctx.root, "/dev")}/gpiochip* but ${lines.length} GPIO sensor(s) are configured`,
        "use a kernel with the GPIO character device (Raspberry Pi OS has it) and check system.root",
      ),
    ];
  const user = await unitUser(ctx);
  const results: CheckResult[] = [];
  for (const path of chips) {
    const denied = accessProblem(path, user);
    if (denied)
      results.push(
        fail(
          `gpio.access.${basename(path)}`,
          denied,
          `install deploy/device/udev/60-fieldrelay.rules and add ${user.name} to group gpio`,
        ),
      );
  }
  if (results.length === 0)
    results.push(ok("gpio.chips", `${chips.map((c) => basename(c)).join(", ")}, ${user.name} can open them`));
  for (const s of lines) {
    const id = `gpio.${s.entry.name}`;
    const line = s.options.line as string | number;
    const chip = s.options.chip as string | number | undefined;
    try {
      const where = resolveLine(line, chip, ctx.root);
      const opened = GpioChip.open(where.chip);
      try {
        const { lines: count } = opened.info();
        if (where.offset >= count) {
          results.push(
            fail(
              id,
              `sensor ${s.entry.name}: ${where.chip} has no line ${where.offset} (${count} lines)`,
              "list lines with fieldrelay gpio info",
            ),
          );
          continue;
        }
        const info = opened.lineInfo(where.offset);
        const used = (info.flags & 1n) !== 0n && info.consumer !== "fieldrelay";
        if (used)
          results.push(
            warn(
              id,
              `sensor ${s.entry.name}: line ${line} (${basename(where.chip)} ${where.offset}) is in use by "${info.consumer}"`,
              "stop the other user or remove the overlay that claims the line",
            ),
          );
        else
          results.push(
            ok(id, `sensor ${s.entry.name}: line ${line} is ${basename(where.chip)} offset ${where.offset}`),
          );
      } finally {
        opened.close();
      }
    } catch (error) {
      const fix =
        error instanceof GpioLineNotFound
          ? "list the names with fieldrelay gpio info; load the naming overlay (dtoverlay=fieldrelay-gpio) or use an offset"
          : "check the chip and line in the config (fieldrelay gpio info)";
      results.push(fail(id, `sensor ${s.entry.name}: ${(error as Error).message}`, fix));
    }
  }
  return results;
}

export function oneWireCheck(ctx: DoctorContext): CheckResult[] {
  const probes = parsedSensors(ctx).filter((s) => s.entry.driver === "ds18b20");
  if (probes.length === 0) return [ok("onewire", "no 1-Wire sensors configured")];
  const dir = under(ctx.root, "/sys/bus/w1/devices");
  let present: string[] = [];
  try {
    present = readdirSync(dir).filter((e) => /^28-/.test(e));
  } catch {}
  const fix =
    "add dtoverlay=w1-gpio (data on GPIO4) to /boot/firmware/config.txt, a 4.7 kΩ pull-up to 3.3 V, reboot";
  if (present.length === 0) return [fail("onewire", `no DS18B20 under ${dir}`, fix)];
  return probes.map((s) => {
    const id = s.options.id as string | undefined;
    if (id === undefined)
      return present.length === 1
        ? ok(`onewire.${s.entry.name}`, `sensor ${s.entry.name}: probe ${present[0]}`)
        : fail(
            `onewire.${s.entry.name}`,
            `sensor ${s.entry.name} has no id and ${present.length} probes are present (${present.join(", ")})`,
            "set id to one of them",
          );
    return present.includes(id)
      ? ok(`onewire.${s.entry.name}`, `sensor ${s.entry.name}: probe ${id} present`)
      : fail(
          `onewire.${s.entry.name}`,
          `sensor ${s.entry.name}: probe ${id} is not under ${dir} (present: ${present.join(", ")})`,
          "check the probe's wiring or its id",
        );
  });
}
