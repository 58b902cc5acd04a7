/**
 * The raspi3b GPIO boot: the Debian base (not baked: no systemd, nothing but the kernel's GPIO
 * character device matters here) with the arm64 binary, a config with gpio_input sensors on named
 * lines, and a check script that runs as init. The script drives the real pinctrl-bcm2835 driver
 * through fieldrelay's gpio commands and prints one report line (report.ts), then the host stops
 * the machine (raspi3b has no PSCI to power off with).
 *
 * Round trips alternate 1, 0, 1 and cross the two ways of naming a line (set by name, get by
 * offset and the other way round), so a wrong name→offset mapping or a line that does not follow
 * its output cannot pass by chance.
 */
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { REPORT_MARKER } from "./guest.ts";

export const RASPI_CHECK = "/usr/local/lib/fieldrelay-boot-test/gpio-check";
export const RASPI_DONE_KEY = "done";

/** The line the sensor reads and the round trips drive, by its device-tree name, and its offset. */
export const ROUND_TRIP_LINE = { name: "GPIO17", offset: 17 } as const;
/** A second named line held at the opposite level, so the two sensors must differ. */
export const OTHER_LINE = { name: "GPIO27", offset: 27 } as const;

export const RASPI_CONFIG = `# raspi3b boot test: gpio_input sensors on lines named by the Pi's device tree.
[device]
id = "boot-test-raspi3b"

[mqtt]
url = "mqtt://127.0.0.1:1883"

[queue]
path = "/tmp/queue.db"

[rtc]
mode = "none"

[[sensor]]
name = "button"
driver = "gpio_input"
line = "${ROUND_TRIP_LINE.name}"

[[sensor]]
name = "door"
driver = "gpio_input"
line = "${OTHER_LINE.name}"

[[sensor]]
name = "ghost"
driver = "gpio_input"
line = "NO_SUCH_LINE"
`;

/** The init script; `offset` is the offset the get-by-offset steps use (17 unless proving failure). */
export function raspiCheckScript(offset: number = ROUND_TRIP_LINE.offset): string {
  const name = ROUND_TRIP_LINE.name;
  return `#!/bin/bash
set -u
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
export HOME=/tmp
out=/tmp/report
: > "$out"
kv() { printf '%s=%s\\n' "$1" "$2" >> "$out"; }
one() { tr '\\n' '|' ; }
F=/usr/local/bin/fieldrelay
C=/etc/fieldrelay/config.toml
n=0
while [ ! -e /dev/gpiochip0 ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
kv kernel.release "$(uname -r)"
kv chips "$(ls /dev | grep '^gpiochip' | tr '\\n' ' ')"
kv chip0.label "$(cat /sys/bus/gpio/devices/gpiochip0/../of_node/compatible 2>/dev/null | tr '\\0' ' ')"
kv info "$($F gpio info gpiochip0 2>&1 | one)"
kv info.exit "\${PIPESTATUS[0]}"
step=0
for v in 1 0 1; do
  step=$((step + 1))
  $F gpio set ${name} "$v" > /tmp/o 2>&1; kv "rt$step.set_by_name.exit" "$?"
  kv "rt$step.get_by_offset" "$($F gpio get --chip gpiochip0 ${offset} 2>&1 | one)"
  kv "rt$step.sensor" "$($F sensor read button -c $C 2>&1 | one)"
done
$F gpio set --chip gpiochip0 ${offset} 0 > /tmp/o 2>&1; kv set_by_offset.exit "$?"
kv get_by_name "$($F gpio get ${name} 2>&1 | one)"
$F gpio set ${OTHER_LINE.name} 1 > /tmp/o 2>&1
kv other.sensor "$($F sensor read door -c $C 2>&1 | one)"
kv button.sensor "$($F sensor read button -c $C 2>&1 | one)"
kv missing.get "$($F gpio get NO_SUCH_LINE 2>&1 | one)"
kv missing.get.exit "$($F gpio get NO_SUCH_LINE > /dev/null 2>&1; echo $?)"
kv missing.offset "$($F gpio get --chip gpiochip0 99 2>&1 | one)"
kv missing.offset.exit "$($F gpio get --chip gpiochip0 99 > /dev/null 2>&1; echo $?)"
kv missing.sensor "$($F sensor read ghost -c $C 2>&1 | one)"
kv missing.sensor.exit "$($F sensor read ghost -c $C > /dev/null 2>&1; echo $?)"
# doctor's GPIO checks against the real driver (no systemd here: only the gpio lines are asserted)
$F doctor -c $C --json > /tmp/doctor.json 2> /tmp/doctor.err
kv doctor.exit "$?"
kv doctor.json "$(base64 -w0 < /tmp/doctor.json)"
kv doctor.stderr "$(one < /tmp/doctor.err)"
kv ${RASPI_DONE_KEY} yes
line="${REPORT_MARKER} $(base64 -w0 "$out")"
echo "$line" > /dev/console
sleep 1
echo "$line" > /dev/console
sleep 60
`;
}

function write(root: string, path: string, content: string, mode = 0o644): void {
  const file = join(root, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content, { mode });
}

/** Adds the binary, the config and the check script to an extracted base rootfs. */
export function addRaspiFiles(root: string, binary: string, offset?: number): void {
  mkdirSync(join(root, "usr/local/bin"), { recursive: true });
  copyFileSync(binary, join(root, "usr/local/bin/fieldrelay"));
  chmodSync(join(root, "usr/local/bin/fieldrelay"), 0o755);
  write(root, "etc/fieldrelay/config.toml", RASPI_CONFIG);
  write(root, RASPI_CHECK.slice(1), raspiCheckScript(offset), 0o755);
}

/** The device tree's gpio-line-names of a node (empty strings kept: an unnamed line). */
export function parseLineNames(raw: Buffer): string[] {
  const text = raw.toString("latin1");
  return (text.endsWith("\0") ? text.slice(0, -1) : text).split("\0");
}
