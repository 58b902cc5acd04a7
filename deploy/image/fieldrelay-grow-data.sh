#!/bin/sh
# fieldrelay-grow-data: on first boot, grow the data partition (label fieldrelay-data, the LAST
# partition, mounted at /var/lib/fieldrelay) to the end of the card or SSD, then grow its ext4
# online. Runs once: a marker file on the data partition records that it is done. Never touches
# the root partition (the baker sized it). A no-op when the partition already ends at the disk's end.
#
# FIELDRELAY_SYSFS (default /sys) and FIELDRELAY_GROW_DRY_RUN=1 exist for tests: with dry run it
# prints the decision instead of acting.
set -eu

MOUNT=/var/lib/fieldrelay
MARKER="$MOUNT/.fieldrelay-data-grown"
SYSFS="${FIELDRELAY_SYSFS:-/sys}"
DRY="${FIELDRELAY_GROW_DRY_RUN:-0}"
# Slack at the end of the disk not worth a resize (1 MiB in 512-byte sectors).
SLACK=2048

say() { echo "fieldrelay-grow-data: $*"; }

[ -e "$MARKER" ] && { say "already done ($MARKER)"; exit 0; }

part_dev="${FIELDRELAY_DATA_DEV:-$(findmnt -n -o SOURCE --target "$MOUNT" 2>/dev/null || true)}"
part="${part_dev##*/}"
if [ -z "$part" ] || [ ! -e "$SYSFS/class/block/$part/partition" ]; then
  say "no data partition mounted at $MOUNT; nothing to do"
  exit 0
fi
disk="$(basename "$(dirname "$(readlink -f "$SYSFS/class/block/$part")")")"
num="$(cat "$SYSFS/class/block/$part/partition")"
start="$(cat "$SYSFS/class/block/$part/start")"
size="$(cat "$SYSFS/class/block/$part/size")"
disk_size="$(cat "$SYSFS/block/$disk/size")"
end=$((start + size))

# Only the last partition may grow into the free space after it.
for other in "$SYSFS/block/$disk/$disk"*; do
  [ -e "$other/start" ] || continue
  if [ "$(cat "$other/start")" -gt "$start" ]; then
    say "$part is not the last partition on $disk; not growing"
    exit 0
  fi
done

if [ $((disk_size - end)) -le $SLACK ]; then
  say "$part already fills $disk"
  [ "$DRY" = 1 ] || touch "$MARKER"
  exit 0
fi

new_size=$((disk_size - start))
# MBR cannot address past 2^32 sectors.
[ $((start + new_size)) -gt 4294967295 ] && new_size=$((4294967295 - start))
# Keep the size a multiple of 4 KiB (8 sectors).
new_size=$((new_size / 8 * 8))
if [ "$DRY" = 1 ]; then
  say "would grow /dev/$disk partition $num from $size to $new_size sectors"
  exit 0
fi
say "growing /dev/$disk partition $num from $size to $new_size sectors"
echo ", $new_size" | sfdisk --no-reread --no-tell-kernel -q -N "$num" "/dev/$disk"
# Tell the kernel the new size of the mounted partition, then grow ext4 online.
partx -u -n "$num" "/dev/$disk"
resize2fs "/dev/$part"
sync
touch "$MARKER"
say "done"
