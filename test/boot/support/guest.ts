/**
 * What the boot test adds to the Debian base before it is shaped into a Raspberry Pi OS image —
 * test-only, never through the baker:
 *   - serial-getty@ttyAMA0 and getty@tty1 masked (a getty on the serial console hangs up the tty
 *     and eats the report line);
 *   - a fixed /etc/machine-id (a read-only root cannot commit a first-boot id);
 *   - a drop-in sending fieldrelay's output to journal+console, so a failure shows why in the
 *     serial log;
 *   - the bundle the image was baked from, so the report can run install.sh live;
 *   - fieldrelay-boot-report.service: after fieldrelay has started it waits for active, samples the
 *     service twice more than one WatchdogSec apart (≥ 2 keep-alive intervals), re-runs install.sh
 *     (nothing may change) and installs a build that cannot run (it must be rolled back), records the mount
 *     options of / and the data partition's /proc/fs/ext4/<dev>/options, the page size and
 *     `fieldrelay doctor --json`, stops fieldrelay, records how it ended, prints one line
 *     `FIELDRELAY-BOOT-REPORT <base64 of key=value lines>` on the console and powers off. base64
 *     keeps the line intact whatever the values contain;
 *   - with `delivery` (a broker on the host, QEMU user network): a static address for
 *     systemd-networkd, and a round after the watchdog samples: record the seqs queued while the
 *     broker was down, print `FIELDRELAY-BOOT-PHASE start-broker` (the host starts it), wait for
 *     the queue to drain.
 */
import { cpSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

export const REPORT_MARKER = "FIELDRELAY-BOOT-REPORT";

export const REPORT_SCRIPT = `#!/bin/bash
set -u
out=/run/fieldrelay-boot-report
: > "$out"
kv() { printf '%s=%s\\n' "$1" "$2" >> "$out"; }
prop() { systemctl show -P "$1" fieldrelay.service; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
sample() {
  kv "$1.uptime_s" "$(uptime_s)"
  for p in ActiveState SubState StatusText NRestarts MainPID Result \\
      WatchdogTimestampMonotonic ActiveEnterTimestampMonotonic ExecMainStartTimestampMonotonic; do
    kv "$1.$p" "$(prop "$p")"
  done
}

# Wait for active, but report early once the service has failed and restarted: the report, not a
# hang until the host's timeout, should tell why.
while [ "$(prop ActiveState)" != active ] && [ "$(prop NRestarts)" = 0 ] &&
  [ "$(cut -d. -f1 /proc/uptime)" -lt 150 ]; do sleep 1; done
sample first
wd_us=$(systemd-analyze timespan "$(prop WatchdogUSec)" 2>/dev/null | sed -n 's/^ *μs: *//p')
kv watchdog_usec "\${wd_us:-0}"
kv unit.Type "$(prop Type)"
kv unit.NotifyAccess "$(prop NotifyAccess)"
kv system.hostname "$(cat /proc/sys/kernel/hostname)"
# One full WatchdogSec (two keep-alive intervals of WatchdogSec/2) plus slack: a service that
# stopped feeding the watchdog would be killed and restarted within this window.
sleep $(( \${wd_us:-30000000} / 1000000 + 5 ))
sample second

kv system.page_size "$(getconf PAGESIZE)"
kv system.kernel "$(uname -r)"

# capture → outage → delivery (only where the test set up a broker on the host, reached through
# QEMU's user network at 10.0.2.2): the broker has been down since boot, so everything sampled so
# far is in the queue. Record those seqs, ask the host to start the broker, wait for the queue to
# drain.
T=/usr/local/lib/fieldrelay-boot-test
if [ -e "$T/delivery" ]; then
  F=/usr/local/bin/fieldrelay
  kv delivery.address "$(cat /sys/class/net/e*/address 2>/dev/null | tr '\\n' ' ')"
  kv delivery.queued_seqs "$($F queue export 2>&1 | sed -En 's/.*"seq":([0-9]+).*/\\1/p' | tr '\\n' ' ')"
  echo "FIELDRELAY-BOOT-PHASE start-broker" > /dev/console
  t0=$(uptime_s)
  n=0
  while [ $n -lt 150 ]; do
    rows=$($F queue stats --json 2>/dev/null | sed -En 's/^ *"rows": *([0-9]+).*/\\1/p' | head -1)
    [ "$rows" = 0 ] && break
    sleep 1; n=$((n + 1))
  done
  kv delivery.rows_after "\${rows:-?}"
  kv delivery.seconds "$(echo "$(uptime_s) $t0" | awk '{printf "%.1f", $1 - $2}')"
  kv delivery.ActiveState "$(prop ActiveState)"
fi

# install.sh on the live system, under real systemd and a read-only root. A re-run of the same
# bundle changes nothing and leaves the service running; then a build that passes check-config
# but cannot run must be rolled back. Both must leave / read-only again. (Left out where the test
# asked so: the installer does not depend on the page size, and the rollback alone takes minutes.)
if [ ! -e "$T/no-install-checks" ]; then
B=/usr/local/lib/fieldrelay-boot-test/bundle
pid_before=$(prop MainPID)
bash "$B/install.sh" --config /etc/fieldrelay/config.toml --timeout 90 > /run/install-rerun.log 2>&1
kv rerun.exit "$?"
kv rerun.unchanged_lines "$(grep -c unchanged /run/install-rerun.log)"
kv rerun.installed_lines "$(grep -c '^installed' /run/install-rerun.log)"
kv rerun.same_pid "$([ "$(prop MainPID)" = "$pid_before" ] && echo yes || echo no)"
kv rerun.root_options "$(findmnt -no OPTIONS /)"
kv rerun.log "$(tr '\n' '|' < /run/install-rerun.log)"
mkdir -p /tmp/broken
for f in "$B"/*; do [ "$(basename "$f")" = fieldrelay ] || cp -r "$f" /tmp/broken/; done
# check-config (run by install.sh after the swap) works through the kept binary; "run" fails.
printf '#!/bin/sh\ncase "$1" in run) echo "boot test: this build cannot run" >&2; exit 70;; esac\nexec /usr/local/bin/fieldrelay.prev "$@"\n' > /tmp/broken/fieldrelay
chmod 755 /tmp/broken/fieldrelay
bash /tmp/broken/install.sh --timeout 45 > /run/install-broken.log 2>&1
kv broken.exit "$?"
kv broken.log "$(tr '\n' '|' < /run/install-broken.log)"
kv broken.root_options "$(findmnt -no OPTIONS /)"
kv broken.binary_restored "$(cmp -s /usr/local/bin/fieldrelay "$B/fieldrelay" && echo yes || echo no)"
kv broken.ActiveState "$(prop ActiveState)"
fi

kv root.options "$(findmnt -no OPTIONS /)"
src=$(findmnt -no SOURCE /var/lib/fieldrelay)
kv data.source "$src"
kv data.mount_options "$(findmnt -no OPTIONS /var/lib/fieldrelay)"
if [ -n "$src" ]; then
  dev=$(basename "$(readlink -f "$src")")
  kv data.ext4_options "$(tr '\\n' ',' < "/proc/fs/ext4/$dev/options" 2>/dev/null)"
fi
kv data.files "$(ls -A /var/lib/fieldrelay | tr '\\n' ' ')"
kv data.size_bytes "$(findmnt -bno SIZE /var/lib/fieldrelay)"
kv grow.ActiveState "$(systemctl show -P ActiveState fieldrelay-grow-data.service)"
kv grow.Result "$(systemctl show -P Result fieldrelay-grow-data.service)"
# fieldrelay doctor on the running device: it must see the real mounts and page size.
/usr/local/bin/fieldrelay doctor --json > /run/doctor.json 2> /run/doctor.err
kv doctor.exit "$?"
kv doctor.json "$(base64 -w0 < /run/doctor.json)"
kv doctor.stderr "$(tr '\\n' '|' < /run/doctor.err)"
kv system.failed_units "$(systemctl list-units --state=failed --plain --no-legend | awk '{print $1}' | tr '\\n' ' ')"

t0=$(uptime_s)
systemctl stop fieldrelay.service
kv stop.seconds "$(echo "$(uptime_s) $t0" | awk '{printf "%.2f", $1 - $2}')"
for p in ActiveState Result ExecMainCode ExecMainStatus; do kv "stop.$p" "$(prop "$p")"; done
kv stop.kill_messages "$(journalctl -b -u fieldrelay.service -o cat | grep -ciE 'SIGKILL|killing|timed out')"

# fieldrelay rtc set on the kernel path: RTC_SET_TIME on the virt machine's PL031 (/dev/rtc0).
# With the service stopped: move the system clock an hour ahead, set the RTC from it, read the
# RTC back through sysfs, move the clock back.
if [ -e /dev/rtc0 ]; then
  sed 's/^mode = "none"/mode = "kernel"/' /etc/fieldrelay/config.toml > /run/rtc.toml
  kv rtc.name "$(cat /sys/class/rtc/rtc0/name)"
  date -s "@$(( $(date +%s) + 3600 ))" > /dev/null
  /usr/local/bin/fieldrelay rtc set --from-system --force -c /run/rtc.toml > /run/rtc.out 2>&1
  kv rtc.set_exit "$?"
  kv rtc.delta_s "$(( $(cat /sys/class/rtc/rtc0/since_epoch) - $(date +%s) ))"
  date -s "@$(( $(date +%s) - 3600 ))" > /dev/null
  kv rtc.set_output "$(tr '\n' '|' < /run/rtc.out)"
else
  kv rtc.node missing
fi

line="${REPORT_MARKER} $(base64 -w0 "$out")"
# Twice, in case a kernel message lands in the middle of the first one.
echo "$line" > /dev/console
sleep 1
echo "$line" > /dev/console
systemctl --no-block poweroff
`;

export const REPORT_UNIT = `[Unit]
Description=fieldrelay boot test: report on the serial console, stop fieldrelay, power off
After=fieldrelay.service

[Service]
Type=oneshot
ExecStart=/usr/local/lib/fieldrelay-boot-test/report
TimeoutStartSec=10min

[Install]
WantedBy=multi-user.target
`;

export const CONSOLE_DROPIN = `[Service]
# boot test only: fieldrelay's log lines on the serial console as well as in the journal
StandardOutput=journal+console
StandardError=journal+console
`;

function write(root: string, path: string, content: string, mode = 0o644): void {
  const file = join(root, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content, { mode });
}

function link(root: string, path: string, target: string): void {
  const file = join(root, path);
  mkdirSync(dirname(file), { recursive: true });
  symlinkSync(target, file);
}

/**
 * The guest's network for a delivery round: QEMU's user network, addressed statically (no DHCP
 * client in the base) by systemd-networkd.
 */
export const NETWORK_FILE = `[Match]
Name=en* eth*

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
`;

export interface BootTestFileOptions {
  /** Run the capture → outage → delivery round against a host broker (needs -nic user). */
  delivery?: boolean;
  /** Re-run install.sh live and roll back a broken build (default true). */
  installChecks?: boolean;
}

/** Adds the boot test's own files to an extracted base rootfs (see the module comment). */
export function addBootTestFiles(root: string, bundle: string, options: BootTestFileOptions = {}): void {
  if (options.installChecks === false)
    write(root, "usr/local/lib/fieldrelay-boot-test/no-install-checks", "");
  if (options.delivery) {
    write(root, "usr/local/lib/fieldrelay-boot-test/delivery", "");
    write(root, "etc/systemd/network/10-boot-test.network", NETWORK_FILE);
    link(
      root,
      "etc/systemd/system/multi-user.target.wants/systemd-networkd.service",
      "/lib/systemd/system/systemd-networkd.service",
    );
  }
  const copy = join(root, "usr/local/lib/fieldrelay-boot-test/bundle");
  mkdirSync(dirname(copy), { recursive: true });
  cpSync(bundle, copy, { recursive: true });
  link(root, "etc/systemd/system/serial-getty@ttyAMA0.service", "/dev/null");
  link(root, "etc/systemd/system/getty@tty1.service", "/dev/null");
  write(root, "etc/machine-id", "6f1c1d0c7a2e4b9c9e3d2a1b0c9d8e7f\n", 0o444);
  write(root, "etc/systemd/system/fieldrelay.service.d/boot-test-console.conf", CONSOLE_DROPIN);
  write(root, "usr/local/lib/fieldrelay-boot-test/report", REPORT_SCRIPT, 0o755);
  write(root, "etc/systemd/system/fieldrelay-boot-report.service", REPORT_UNIT);
  link(
    root,
    "etc/systemd/system/multi-user.target.wants/fieldrelay-boot-report.service",
    "/etc/systemd/system/fieldrelay-boot-report.service",
  );
}

/**
 * The fieldrelay config baked into the guest: a simulated sensor and, by default, a broker nobody
 * answers; with brokerUrl, the host's broker (down until the delivery round starts it).
 */
export function guestConfig(brokerUrl?: string): string {
  return GUEST_CONFIG.replace(
    'url = "mqtt://127.0.0.1:1883"',
    brokerUrl
      ? `url = "${brokerUrl}"\nmin_backoff_s = 0.5\nmax_backoff_s = 2`
      : 'url = "mqtt://127.0.0.1:1883"',
  );
}

export const GUEST_CONFIG = `# boot test: runs degraded (broker unreachable, queues offline) but must stay up and fed.
[device]
id = "boot-test-pi"

[mqtt]
url = "mqtt://127.0.0.1:1883"

[queue]
path = "/var/lib/fieldrelay/queue.db"

[rtc]
mode = "none"

[[sensor]]
name = "sim"
driver = "simulated"
interval_s = 2
`;
