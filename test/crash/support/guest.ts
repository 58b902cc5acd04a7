/**
 * What the crash suite adds to the Debian base (test-only, never through the baker), and the
 * script the guest runs once booted:
 *
 *   1. stop fieldrelay and unmount the baked data partition;
 *   2. "crash": the crash disk under a dm-log-writes target (log on its own disk), mounted where
 *      the data partition goes (noatime,data=journal as in the shipped fstab); fieldrelay started
 *      under systemd with a short commit interval and a small max_bytes; the workload
 *      (test/crash/guest/workload.ts) marks the log; then stop, unmount, remove the target;
 *   3. "broken": the same on another pair of disks with FR_TEST_ACK_BEFORE_COMMIT=1 — the
 *      harness must find the loss;
 *   4. "flakey": a disk under dm-flakey that fails every write for a few seconds while ingest
 *      runs; afterwards the service's state, and the queue re-read from the medium after a
 *      remount (fieldrelay queue export);
 *   5. "bench": a plain disk, product defaults, 50 readings/s with the broker up then down;
 *      /sys/block/<dev>/stat gives the bytes the device was asked to write;
 *   6. everything in /run/crash goes, as a tar, onto the results disk; the guest prints one
 *      CRASH-DONE line and powers off.
 * Disks are found by their virtio serial (/dev/disk/by-id/virtio-<serial>).
 */
import { cpSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

export const DONE_MARKER = "FIELDRELAY-CRASH-DONE";
export const LIB = "usr/local/lib/fieldrelay-crash";
export const SYNC_FILE = "/run/fieldrelay-crash-synced";

/** Disks besides the image, by virtio serial, with their sizes in MiB. */
export const DISKS = {
  "crash-data": 64,
  "crash-log": 0, // sized by the caller (the log grows with the run)
  "broken-data": 64,
  "broken-log": 256,
  "flakey-data": 64,
  "bench-data": 1024, // sparse; above min_free_disk_mb's default, so the bench runs the defaults
  results: 64,
} as const;
export type DiskName = keyof typeof DISKS;

export const RUN_SCRIPT = `#!/bin/bash
# fieldrelay crash suite, guest side: see test/crash/support/guest.ts.
set -u
exec > /dev/console 2>&1
L=/${LIB}
R=/run/crash
M=/var/lib/fieldrelay
mkdir -p "$R"
say() { echo "CRASH: $*"; }
disk() { readlink -f "/dev/disk/by-id/virtio-$1"; }
kv() { printf '%s=%s\\n' "$1" "$2" >> "$R/report.txt"; }
prop() { systemctl show -P "$1" fieldrelay.service; }
dropin() {
  mkdir -p /run/systemd/system/fieldrelay.service.d
  { echo "[Service]"; for e in "$@"; do echo "Environment=$e"; done; } > /run/systemd/system/fieldrelay.service.d/crash.conf
  systemctl daemon-reload
}
mountdata() { mount -t ext4 -o noatime,data=journal "$1" "$M" && chown fieldrelay:fieldrelay "$M" && chmod 0750 "$M"; }
workload() { HOME=/run/crash BUN_BE_BUN=1 /usr/local/bin/fieldrelay "$L/workload.js"; }
stopsvc() {
  systemctl stop fieldrelay.service
  kv "$1.Result" "$(prop Result)"
  kv "$1.NRestarts" "$(prop NRestarts)"
  journalctl -b -u fieldrelay.service -o cat --no-pager | grep -v DEP0169 | tail -n 300 > "$R/$1.service.log"
}
export CRASH_SCALE="$(cat "$L/scale")"

systemctl stop fieldrelay.service
umount "$M" || true
modprobe -q dm-log-writes 2>/dev/null; modprobe -q dm-flakey 2>/dev/null
kv dm.targets "$(dmsetup targets | awk '{print $1}' | tr '\\n' ' ')"

logged() { # name data-serial log-serial mode env...
  local name=$1 data logdev mode=$4
  data=$(disk "$2"); logdev=$(disk "$3"); shift 4
  say "run $name ($mode) on $data, log $logdev"
  if ! dmsetup create "$name" --table "0 $(blockdev --getsz "$data") log-writes $data $logdev"; then
    kv "$name.error" "dmsetup create failed"; return
  fi
  mountdata "/dev/mapper/$name"
  dropin "$@"
  systemctl start fieldrelay.service
  kv "$name.ActiveState" "$(prop ActiveState)"
  CRASH_DM=$name CRASH_MODE=$mode CRASH_OUT="$R/$name.json" workload
  kv "$name.workload_exit" "$?"
  stopsvc "$name"
  kv "$name.status" "$(dmsetup status "$name")"
  umount "$M"
  dmsetup remove "$name"
}

# The crash disks are small (every crash point copies one): min_free_disk_mb's default of 64
# would have the queue evict everything on them.
SMALL=FIELDRELAY_QUEUE_MIN_FREE_DISK_MB=8
logged crash crash-data crash-log log-writes FIELDRELAY_QUEUE_COMMIT_INTERVAL_MS=50 FIELDRELAY_QUEUE_MAX_BYTES=524288 $SMALL
logged broken broken-data broken-log broken FR_TEST_ACK_BEFORE_COMMIT=1 $SMALL

# dm-flakey: linear until the workload switches it to failing writes and back ($L/flakey).
data=$(disk flakey-data)
say "run flakey on $data"
dmsetup create flaky --table "0 $(blockdev --getsz "$data") linear $data 0"
mountdata /dev/mapper/flaky
dropin FIELDRELAY_QUEUE_COMMIT_INTERVAL_MS=200 $SMALL
systemctl start fieldrelay.service
CRASH_MODE=flakey CRASH_OUT="$R/flakey.json" workload
kv flakey.workload_exit "$?"
kv flakey.ActiveState "$(prop ActiveState)"
stopsvc flakey
umount "$M"
kv flakey.kernel "$(dmesg | grep -iE 'EXT4-fs|I/O error|jbd2|Buffer I/O' | tail -n 12 | tr '\\n' '|')"
# Re-read from the medium: a fresh mount (the page cache went with the unmount).
mount -t ext4 -o noatime "/dev/mapper/flaky" "$M" && kv flakey.remount ok || kv flakey.remount failed
/usr/local/bin/fieldrelay queue export --db "$M/queue.db" > "$R/flakey.export" 2> "$R/flakey.export.err"
kv flakey.export_exit "$?"
umount "$M"
dmsetup remove flaky

# Bench (only when asked: minutes): product defaults on a plain disk; the device's write counter.
if [ "$(cat "$L/bench-seconds")" -gt 0 ]; then
data=$(disk bench-data)
say "run bench on $data"
mountdata "$data"
rm -f /run/systemd/system/fieldrelay.service.d/crash.conf; systemctl daemon-reload
systemctl start fieldrelay.service
CRASH_MODE=bench CRASH_BENCH_DEV="$(basename "$data")" CRASH_BENCH_SECONDS="$(cat "$L/bench-seconds")" CRASH_OUT="$R/bench.json" workload
kv bench.workload_exit "$?"
stopsvc bench
umount "$M"
fi

tar -C "$R" -cf "$(disk results)" .
sync
say "${DONE_MARKER}"
echo "${DONE_MARKER}" > /dev/console
systemctl --no-block poweroff
`;

export const FLAKEY_SCRIPT = `#!/bin/bash
# $0 down|up: the flakey device fails every write (reads still work) | behaves again.
set -eu
data=$(readlink -f /dev/disk/by-id/virtio-flakey-data)
size=$(blockdev --getsz "$data")
case "$1" in
  down) dmsetup load flaky --table "0 $size flakey $data 0 0 1 1 error_writes" ;;
  up) dmsetup load flaky --table "0 $size linear $data 0" ;;
esac
dmsetup suspend --nolockfs flaky
dmsetup resume flaky
`;

export const RUN_UNIT = `[Unit]
Description=fieldrelay crash suite: workloads on dm-log-writes/dm-flakey, results to a disk, power off
After=fieldrelay.service

[Service]
Type=oneshot
ExecStart=/${LIB}/run
TimeoutStartSec=infinity
`;

/** The baked config: a local broker the workload runs, the sync file the workload creates. */
export const CRASH_CONFIG = `# crash suite guest
[device]
id = "crash-pi"

[mqtt]
url = "mqtt://127.0.0.1:1883"
min_backoff_s = 0.2
max_backoff_s = 1

[queue]
path = "/var/lib/fieldrelay/queue.db"

[clock]
sync_source = "file:${SYNC_FILE}"

[rtc]
mode = "none"
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

export interface CrashGuestFiles {
  /** The bundled workload (one JS file). */
  workload: string;
  scale: number;
  benchSeconds: number;
}

export function addCrashFiles(root: string, o: CrashGuestFiles): void {
  link(root, "etc/systemd/system/serial-getty@ttyAMA0.service", "/dev/null");
  link(root, "etc/systemd/system/getty@tty1.service", "/dev/null");
  write(root, "etc/machine-id", "6f1c1d0c7a2e4b9c9e3d2a1b0c9d8e7f\n", 0o444);
  cpSync(o.workload, join(root, LIB, "workload.js"));
  write(root, `${LIB}/run`, RUN_SCRIPT, 0o755);
  write(root, `${LIB}/flakey`, FLAKEY_SCRIPT, 0o755);
  write(root, `${LIB}/scale`, `${o.scale}\n`);
  write(root, `${LIB}/bench-seconds`, `${o.benchSeconds}\n`);
  write(root, "etc/systemd/system/fieldrelay-crash.service", RUN_UNIT);
  link(
    root,
    "etc/systemd/system/multi-user.target.wants/fieldrelay-crash.service",
    "/etc/systemd/system/fieldrelay-crash.service",
  );
}
