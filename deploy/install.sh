#!/usr/bin/env bash
# install.sh: install fieldrelay from the bundle this script sits in. Run as root on the device, or
# with --root DIR to install into a prepared tree (image baking, tests) without systemctl or mount.
#
#   install.sh [--root DIR] [--boot-dir DIR] [--config FILE] [--binary FILE] [--no-rtc] [--timeout S]
#
# Idempotent: every item is compared before it is written, and a second run prints "unchanged"
# for each. One line per action on stdout; on failure one line "install.sh: ..." on stderr and a
# non-zero exit, after the binary has been rolled back.
#
# Order, and why:
#   1. remount read-only mounts rw (restored by an EXIT trap, so also after a failure)
#   2. groups and the fieldrelay system user (the owners of the files below)
#   3. binary: /usr/local/bin/.fieldrelay.new, fsync, rename over fieldrelay; the replaced file is
#      kept as fieldrelay.prev, so a rename back is the rollback
#   4. /etc/fieldrelay/config.toml (only if absent) and env (0600, secrets), unit, device files,
#      overlay .dtbo, the config.txt block, fake-hwclock mask, /var/lib/fieldrelay
#   5. check-config with the new binary: failure rolls the binary back
#   6. live: daemon-reload, enable, restart, wait for ActiveState=active (Type=notify: after
#      READY=1); failure rolls the binary back and restarts the old one.
#      --root: enable by the multi-user.target.wants symlink systemctl would make.
set -euo pipefail

readonly BUNDLE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly MARK_BEGIN="# >>> fieldrelay >>>"
readonly MARK_END="# <<< fieldrelay <<<"
readonly SERVICE=fieldrelay.service

ARGS=("$@")
ROOT=""
BOOT_DIR=""
CONFIG="$BUNDLE/config.example.toml"
BINARY="$BUNDLE/fieldrelay"
RTC=1
TIMEOUT=60

say() { printf '%s\n' "$*"; }
die() {
	printf 'install.sh: %s\n' "$*" >&2
	exit 1
}
usage() {
	printf 'usage: install.sh [--root DIR] [--boot-dir DIR] [--config FILE] [--binary FILE] [--no-rtc] [--timeout S]\n' >&2
	exit 64
}

while (($#)); do
	case "$1" in
	--root) ROOT="${2:?--root needs a directory}"; shift 2 ;;
	--boot-dir) BOOT_DIR="${2:?--boot-dir needs a directory}"; shift 2 ;;
	--config) CONFIG="${2:?--config needs a file}"; shift 2 ;;
	--binary) BINARY="${2:?--binary needs a file}"; shift 2 ;;
	--no-rtc) RTC=0; shift ;;
	--timeout) TIMEOUT="${2:?--timeout needs seconds}"; shift 2 ;;
	-h | --help) usage ;;
	*) printf 'install.sh: unknown argument %s\n' "$1" >&2; usage ;;
	esac
done

[[ $(id -u) -eq 0 ]] || die "must run as root (try: sudo $0 ${ARGS[*]})"
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "--timeout must be whole seconds, got '$TIMEOUT'"
if [[ -n $ROOT ]]; then
	[[ -d $ROOT ]] || die "--root $ROOT is not a directory"
	ROOT="$(cd "$ROOT" && pwd)"
	[[ $ROOT != / ]] || ROOT=""
fi
R="$ROOT" # prefix for every path written; "" on the live system
[[ -f $BINARY ]] || die "no binary at $BINARY (pass --binary FILE)"
[[ -f $CONFIG ]] || die "no config at $CONFIG (pass --config FILE)"
[[ -f $BUNDLE/systemd/$SERVICE ]] || die "bundle is incomplete: $BUNDLE/systemd/$SERVICE is missing"
[[ -f $BUNDLE/overlays/config.txt ]] || die "bundle is incomplete: $BUNDLE/overlays/config.txt is missing"

if [[ -z $BOOT_DIR ]]; then
	if [[ -f $R/boot/firmware/config.txt ]]; then BOOT_DIR="$R/boot/firmware"; else BOOT_DIR="$R/boot"; fi
fi
[[ -d $BOOT_DIR ]] || die "no firmware directory $BOOT_DIR (pass --boot-dir DIR, the one holding config.txt)"
BOOT_DIR="$(cd "$BOOT_DIR" && pwd)"

# Shown paths are the device's paths: with --root, the prefix is left out.
show() { printf '%s' "${1#"$R"}"; }

# ---------------------------------------------------------------------------------------------
# 1. Read-only mounts. findmnt -T names the mount holding a path; VFS-OPTIONS is the mount's own
# ro/rw flag, FS-OPTIONS the filesystem's. A read-only root (ro filesystem) is remounted rw and
# back to ro; a read-only bind mount of a rw filesystem only gets its bind flag flipped, because
# remounting its filesystem ro would also freeze every other mount of it.
REMOUNTED=() # "target|how" in the order they were remounted
has_opt() { [[ ,$1, == *,"$2",* ]]; }
mount_of() {
	local p="$1"
	while [[ ! -e $p ]]; do p="$(dirname "$p")"; done
	findmnt -n -o TARGET -T "$p"
}
make_writable() {
	local target vfs fs m
	target="$(mount_of "$1")"
	for m in "${REMOUNTED[@]}"; do [[ ${m%%|*} == "$target" ]] && return 0; done
	vfs="$(findmnt -n -o VFS-OPTIONS --mountpoint "$target" | tail -n 1)"
	fs="$(findmnt -n -o FS-OPTIONS --mountpoint "$target" | tail -n 1)"
	has_opt "$vfs" ro || return 0
	if has_opt "$fs" ro; then
		mount -o remount,rw "$target" || die "cannot remount $target read-write"
		REMOUNTED+=("$target|fs")
	else
		mount -o remount,bind,rw "$target" || die "cannot remount $target read-write"
		REMOUNTED+=("$target|bind")
	fi
	say "remounted $target read-write"
}
WORK=""
restore_mounts() {
	local status=$? i target how
	[[ -z $WORK ]] || rm -rf "$WORK"
	sync || true
	for ((i = ${#REMOUNTED[@]} - 1; i >= 0; i--)); do
		target="${REMOUNTED[i]%%|*}"
		how="${REMOUNTED[i]##*|}"
		if [[ $how == fs ]]; then
			mount -o remount,ro "$target" || printf 'install.sh: could not remount %s read-only again\n' "$target" >&2
		else
			mount -o remount,bind,ro "$target" || printf 'install.sh: could not remount %s read-only again\n' "$target" >&2
		fi
		say "remounted $target read-only"
	done
	exit "$status"
}
trap restore_mounts EXIT
if [[ -n $R ]]; then
	make_writable "$R"
else
	for p in /usr/local/bin /etc /var/lib; do make_writable "$p"; done
fi
make_writable "$BOOT_DIR"

# What the running service depends on; when none of it changed and the service is active, a
# re-run leaves it running instead of restarting it. stat, not a hash: every write here renames a
# new file into place, so the inode changes with the content.
runtime_fingerprint() {
	local f
	for f in "$R/usr/local/bin/fieldrelay" "$R/etc/fieldrelay/config.toml" "$R/etc/fieldrelay/env" \
		"$R/etc/systemd/system/$SERVICE" "$R/etc/group"; do
		stat -c '%n %i %s %Y %a %u %g' "$f" 2>/dev/null || echo "absent $f"
	done
}
FINGERPRINT_BEFORE="$(runtime_fingerprint)"

# ---------------------------------------------------------------------------------------------
# 2. Users and groups, always through the shadow tools (useradd/groupadd/usermod --prefix DIR
# edit DIR/etc/{passwd,group,shadow,gshadow} with their locking) and read back from those files.
PREFIX=()
[[ -z $R ]] || PREFIX=(--prefix "$R")
for f in passwd group shadow gshadow; do
	[[ -f $R/etc/$f ]] || die "$(show "$R/etc/$f") is missing: the tree must hold etc/passwd, group, shadow, gshadow"
done
group_line() { awk -F: -v n="$1" '$1 == n' "$R/etc/group"; }
user_line() { awk -F: -v n="$1" '$1 == n' "$R/etc/passwd"; }
ensure_group() {
	if [[ -n $(group_line "$1") ]]; then
		say "unchanged group $1"
	else
		groupadd --system "${PREFIX[@]}" "$1" || die "groupadd $1 failed"
		say "created group $1"
	fi
}
# The unit names its supplementary groups; a group it names that does not exist stops it from
# starting (status=216/GROUP), so every one of them is made here.
unit_groups() { sed -n 's/^SupplementaryGroups=//p' "$BUNDLE/systemd/$SERVICE" | tr ' ' '\n' | sed '/^$/d'; }
mapfile -t EXTRA_GROUPS < <(printf '%s\n' i2c gpio $(unit_groups) | awk '!seen[$0]++')
ensure_group fieldrelay
for g in "${EXTRA_GROUPS[@]}"; do ensure_group "$g"; done
if [[ -n $(user_line fieldrelay) ]]; then
	say "unchanged user fieldrelay"
else
	useradd --system "${PREFIX[@]}" --gid fieldrelay --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin --comment "fieldrelay edge runtime" fieldrelay || die "useradd fieldrelay failed"
	say "created user fieldrelay (system, no home, /usr/sbin/nologin)"
fi
for g in "${EXTRA_GROUPS[@]}"; do
	if group_line "$g" | awk -F: '{ print $4 }' | tr ',' '\n' | grep -qx fieldrelay; then
		say "unchanged fieldrelay in group $g"
	else
		usermod "${PREFIX[@]}" --append --groups "$g" fieldrelay || die "usermod: adding fieldrelay to $g failed"
		say "added fieldrelay to group $g"
	fi
done
FR_UID="$(user_line fieldrelay | cut -d: -f3)"
FR_GID="$(group_line fieldrelay | cut -d: -f3)"

# ---------------------------------------------------------------------------------------------
# Files. put SRC DEST MODE UID GID: write DEST only if content, mode or owner differ; always via
# a temp file in the same directory, fsync, rename, so a power cut leaves the old or the new file.
# The firmware partition is FAT: no owners or modes to set or compare, only content.
no_unix_modes() { [[ $(stat -f -c %T "$1" 2>/dev/null) == msdos ]]; }

put() {
	local src="$1" dest="$2" mode="$3" uid="$4" gid="$5" tmp modes=1
	mkdir -p "$(dirname "$dest")"
	no_unix_modes "$(dirname "$dest")" && modes=0
	if [[ -f $dest && ! -L $dest ]] && cmp -s "$src" "$dest" &&
		{ ((modes == 0)) || [[ $(stat -c '%a %u %g' "$dest") == "$mode $uid $gid" ]]; }; then
		say "unchanged $(show "$dest")"
		return 0
	fi
	tmp="$(dirname "$dest")/.$(basename "$dest").new"
	cp "$src" "$tmp"
	if ((modes)); then
		chmod "$mode" "$tmp"
		chown "$uid:$gid" "$tmp"
	fi
	sync "$tmp"
	mv -f "$tmp" "$dest"
	sync "$(dirname "$dest")"
	say "installed $(show "$dest")"
}

# ---------------------------------------------------------------------------------------------
# 3. Binary. The architecture comes from the ELF header (e_machine), so a binary for another
# machine is recognised as such instead of looking broken.
elf_arch() {
	case "$(od -An -tx1 -j18 -N2 "$1" 2>/dev/null | tr -d ' \n')" in
	b700) echo aarch64 ;;
	3e00) echo x86_64 ;;
	2800) echo arm ;;
	*) echo unknown ;;
	esac
}
BIN_ARCH="$(elf_arch "$BINARY")"
HOST_ARCH="$(uname -m)"
# Can the new binary run here? Same machine: yes, and a failure is its fault. Another machine:
# only if binfmt (qemu-user) runs it.
runnable() {
	[[ $BIN_ARCH == "$HOST_ARCH" ]] && return 0
	timeout 30 "$1" version >/dev/null 2>&1
}
describe_binary() {
	local v=""
	if [[ $BINARY == "$BUNDLE/fieldrelay" && -f $BUNDLE/VERSION ]]; then v="$(head -n 1 "$BUNDLE/VERSION")"; fi
	[[ -n $v ]] || v="$(timeout 20 "$BINARY" version 2>/dev/null | head -n 1)" || true
	[[ -n $v ]] || v="$BIN_ARCH binary"
	printf '%s' "$v"
}

BIN="$R/usr/local/bin/fieldrelay"
PREV="$R/usr/local/bin/fieldrelay.prev"
BINARY_CHANGED=0
HAD_PREVIOUS=0
mkdir -p "$R/usr/local/bin"
if [[ -f $BIN ]] && cmp -s "$BINARY" "$BIN"; then
	if [[ $(stat -c '%a %u %g' "$BIN") == "755 0 0" ]]; then
		say "unchanged $(show "$BIN") ($(describe_binary))"
	else
		chmod 0755 "$BIN" && chown 0:0 "$BIN"
		say "fixed mode of $(show "$BIN") to 0755 root:root"
	fi
else
	if [[ -f $BIN ]]; then
		put "$BIN" "$PREV" 755 0 0 >/dev/null
		say "kept previous binary as $(show "$PREV")"
		HAD_PREVIOUS=1
	fi
	tmp="$R/usr/local/bin/.fieldrelay.new"
	cp "$BINARY" "$tmp"
	chmod 0755 "$tmp"
	chown 0:0 "$tmp"
	sync "$tmp"
	mv -f "$tmp" "$BIN"
	sync "$R/usr/local/bin"
	BINARY_CHANGED=1
	say "installed $(show "$BIN") ($(describe_binary))"
fi

# Rollback: put the previous binary back (or remove a first install), so the device keeps
# running what ran before.
rollback_binary() {
	((BINARY_CHANGED)) || return 0
	if ((HAD_PREVIOUS)); then
		local tmp="$R/usr/local/bin/.fieldrelay.new"
		cp "$PREV" "$tmp" && chmod 0755 "$tmp" && sync "$tmp" && mv -f "$tmp" "$BIN" && sync "$R/usr/local/bin"
		say "rolled back $(show "$BIN") to the previous binary"
	else
		rm -f "$BIN"
		sync "$R/usr/local/bin"
		say "removed $(show "$BIN") (there was no previous binary to roll back to)"
	fi
}

# ---------------------------------------------------------------------------------------------
# 4. Configuration, unit, device files, overlay.
ETC="$R/etc/fieldrelay"
if [[ ! -d $ETC ]]; then
	install -d -m 0750 -o 0 -g "$FR_GID" "$ETC"
	say "created $(show "$ETC")"
fi
# A config that differs from the one this install would write is kept; the candidate goes beside
# it as config.toml.new (the bundle itself may be a temp dir gone after the install).
if [[ -e $ETC/config.toml ]]; then
	if cmp -s "$CONFIG" "$ETC/config.toml"; then
		say "unchanged $(show "$ETC/config.toml")"
		[[ ! -e $ETC/config.toml.new ]] || { rm -f "$ETC/config.toml.new" && say "removed $(show "$ETC/config.toml.new")"; }
	else
		put "$CONFIG" "$ETC/config.toml.new" 640 0 "$FR_GID"
		say "kept $(show "$ETC/config.toml") (yours, not overwritten); compare: diff -u /etc/fieldrelay/config.toml /etc/fieldrelay/config.toml.new"
	fi
else
	put "$CONFIG" "$ETC/config.toml" 640 0 "$FR_GID"
fi
if [[ -e $ETC/env ]]; then
	say "unchanged $(show "$ETC/env")"
else
	(umask 077 && : >"$ETC/env")
	chmod 0600 "$ETC/env"
	chown 0:0 "$ETC/env"
	say "created $(show "$ETC/env") (empty, 0600: put FIELDRELAY_MQTT_PASSWORD=... here)"
fi

put "$BUNDLE/systemd/$SERVICE" "$R/etc/systemd/system/$SERVICE" 644 0 0

CHANGED_DEVICE=()
device_file() {
	local src="$BUNDLE/device/$1" dest="$R$2" out
	if [[ ! -f $src ]]; then
		say "skipped $2: not in the bundle"
		return 0
	fi
	out="$(put "$src" "$dest" 644 0 0)"
	say "$out"
	[[ $out == unchanged* ]] || CHANGED_DEVICE+=("$1")
}
device_file journald/fieldrelay.conf /etc/systemd/journald.conf.d/fieldrelay.conf
device_file timesyncd/fieldrelay.conf /etc/systemd/timesyncd.conf.d/fieldrelay.conf
if [[ -d $R/etc/chrony ]]; then
	device_file chrony/fieldrelay.conf /etc/chrony/conf.d/fieldrelay.conf
fi
device_file udev/60-fieldrelay.rules /etc/udev/rules.d/60-fieldrelay.rules

DTBO="$BUNDLE/overlays/fieldrelay-gpio.dtbo"
if [[ -f $DTBO ]]; then
	put "$DTBO" "$BOOT_DIR/overlays/fieldrelay-gpio.dtbo" 644 0 0
fi

# The config.txt block: the bundle's fragment between marker lines, replacing an earlier block in
# place (or appended). A line the user already has outside the block is left out of it, so no
# setting appears twice; with --no-rtc the DS3231 overlay line is left out. The block opens with
# [all] so it applies to every board even when the file ends inside a [pi4]/[cm4] section.
CONFIG_TXT="$BOOT_DIR/config.txt"
[[ -f $CONFIG_TXT ]] || : >"$CONFIG_TXT"
config_txt_block() {
	local outside="$1" line want_gpio=0
	[[ -f $DTBO ]] && ! grep -qE '^[[:space:]]*dtoverlay=fieldrelay-gpio' "$BUNDLE/overlays/config.txt" && want_gpio=1
	printf '%s\n' "$MARK_BEGIN" "[all]"
	while IFS= read -r line || [[ -n $line ]]; do
		if [[ $line =~ ^[[:space:]]*[^#[:space:]] ]]; then
			if ((!RTC)) && [[ $line == *ds3231* ]]; then continue; fi
			if grep -qxF -- "$(sed 's/^[[:space:]]*//;s/[[:space:]]*$//' <<<"$line")" "$outside"; then continue; fi
		fi
		printf '%s\n' "$line"
	done <"$BUNDLE/overlays/config.txt"
	# The installed overlay is also enabled, unless the fragment already names it.
	if ((want_gpio)) && ! grep -qxF "dtoverlay=fieldrelay-gpio" "$outside"; then
		printf '%s\n' "dtoverlay=fieldrelay-gpio"
	fi
	printf '%s\n' "$MARK_END"
}
WORK="$(mktemp -d)"
work="$WORK"
# Lines outside any earlier block, trimmed, for the "already there" test.
awk -v b="$MARK_BEGIN" -v e="$MARK_END" '$0 == b { skip = 1; next } $0 == e { skip = 0; next } !skip' "$CONFIG_TXT" |
	sed 's/^[[:space:]]*//;s/[[:space:]]*$//' >"$work/outside"
config_txt_block "$work/outside" >"$work/block"
awk -v b="$MARK_BEGIN" -v e="$MARK_END" -v blockfile="$work/block" '
	function emit(   l) { while ((getline l < blockfile) > 0) print l; close(blockfile); done = 1 }
	$0 == b { if (!done) emit(); skip = 1; next }
	$0 == e { skip = 0; next }
	!skip { print }
	END { if (!done) emit() }
' "$CONFIG_TXT" >"$work/config.txt"
if cmp -s "$work/config.txt" "$CONFIG_TXT"; then
	say "unchanged $(show "$CONFIG_TXT") (fieldrelay block)"
else
	cp "$work/config.txt" "$CONFIG_TXT.new"
	chmod --reference="$CONFIG_TXT" "$CONFIG_TXT.new" 2>/dev/null || true
	sync "$CONFIG_TXT.new"
	mv -f "$CONFIG_TXT.new" "$CONFIG_TXT"
	sync "$BOOT_DIR"
	say "updated $(show "$CONFIG_TXT") (fieldrelay block)"
fi

# With the DS3231 in the kernel the RTC sets the clock at boot; fake-hwclock would then restore
# a stale shutdown time over it, so it is masked. --no-rtc undoes the mask made here.
MASK="$R/etc/systemd/system/fake-hwclock.service"
if ((RTC)); then
	if [[ -L $MASK && $(readlink "$MASK") == /dev/null ]]; then
		say "unchanged $(show "$MASK") (masked)"
	else
		mkdir -p "$(dirname "$MASK")"
		ln -sfn /dev/null "$MASK"
		say "masked fake-hwclock.service (the DS3231 sets the clock at boot)"
	fi
elif [[ -L $MASK && $(readlink "$MASK") == /dev/null ]]; then
	rm -f "$MASK"
	say "unmasked fake-hwclock.service (--no-rtc)"
else
	say "unchanged fake-hwclock.service (not masked: --no-rtc)"
fi

STATE="$R/var/lib/fieldrelay"
if [[ -d $STATE && $(stat -c '%a %u %g' "$STATE") == "750 $FR_UID $FR_GID" ]]; then
	say "unchanged $(show "$STATE")"
else
	install -d -m 0750 -o "$FR_UID" -g "$FR_GID" "$STATE"
	chown "$FR_UID:$FR_GID" "$STATE"
	chmod 0750 "$STATE"
	say "created $(show "$STATE") (fieldrelay, 0750)"
fi

# ---------------------------------------------------------------------------------------------
# 5. check-config with the binary now installed. It only reads the file, so with --root it reads
# the tree's copy. The environment is emptied so the installing shell's FIELDRELAY_* cannot mask
# a problem in the file.
if runnable "$BIN"; then
	set +e
	out="$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin timeout 60 "$BIN" check-config --config "$ETC/config.toml" 2>&1)"
	code=$?
	set -e
	if ((code != 0)); then
		printf '%s\n' "$out" | tail -n 20 >&2
		rollback_binary
		if ((code == 78)); then
			die "check-config rejected /etc/fieldrelay/config.toml (exit 78); fix it and run install.sh again"
		fi
		die "the new binary failed to run check-config (exit $code): it is broken or truncated; the previous binary is back"
	fi
	say "checked /etc/fieldrelay/config.toml with the new binary"
else
	say "skipped check-config: cannot run an $BIN_ARCH binary here ($HOST_ARCH)"
fi

# ---------------------------------------------------------------------------------------------
# 6. Enable and start.
WANTS="$R/etc/systemd/system/multi-user.target.wants"
if [[ -n $R ]]; then
	if [[ -L $WANTS/$SERVICE && $(readlink "$WANTS/$SERVICE") == "/etc/systemd/system/$SERVICE" ]]; then
		say "unchanged $(show "$WANTS/$SERVICE") (enabled)"
	else
		mkdir -p "$WANTS"
		ln -sfn "/etc/systemd/system/$SERVICE" "$WANTS/$SERVICE"
		say "enabled $SERVICE (multi-user.target.wants symlink)"
	fi
	say "done: installed into $R (systemctl not called)"
	exit 0
fi

systemctl daemon-reload
for d in "${CHANGED_DEVICE[@]}"; do
	case "$d" in
	journald/*) systemctl try-restart systemd-journald.service && say "restarted systemd-journald" ;;
	timesyncd/*) systemctl try-restart systemd-timesyncd.service && say "restarted systemd-timesyncd" ;;
	chrony/*) systemctl try-restart chrony.service && say "restarted chrony" ;;
	udev/*) udevadm control --reload-rules && udevadm trigger && say "reloaded udev rules" ;;
	esac
done
if systemctl is-enabled --quiet "$SERVICE" 2>/dev/null; then
	say "unchanged $SERVICE (enabled)"
else
	systemctl enable --quiet "$SERVICE"
	say "enabled $SERVICE"
fi

# Type=notify: ActiveState turns active only after READY=1, so "active" means ready.
wait_active() {
	local deadline=$((SECONDS + TIMEOUT)) state
	while ((SECONDS < deadline)); do
		state="$(systemctl show -p ActiveState --value "$SERVICE")"
		case "$state" in
		active) return 0 ;;
		failed) return 1 ;;
		esac
		sleep 1
	done
	return 1
}
if [[ $(runtime_fingerprint) == "$FINGERPRINT_BEFORE" && $(systemctl show -p ActiveState --value "$SERVICE") == active ]]; then
	say "unchanged $SERVICE (active; nothing it uses changed, not restarted)"
	exit 0
fi
systemctl restart --no-block "$SERVICE"
if wait_active; then
	say "started $SERVICE: active (ready) with $(describe_binary)"
	exit 0
fi
state="$(systemctl show -p ActiveState --value "$SERVICE")"
say "$SERVICE did not become ready within ${TIMEOUT}s (ActiveState=$state); last journal lines:"
journalctl -u "$SERVICE" -n 30 --no-pager || true
if ((BINARY_CHANGED && HAD_PREVIOUS)); then
	rollback_binary
	systemctl restart --no-block "$SERVICE"
	if wait_active; then
		say "restarted $SERVICE with the previous binary: active"
	else
		say "the previous binary did not become ready either; see journalctl -u $SERVICE"
	fi
	die "$SERVICE failed to become ready with the new binary; rolled back to $(show "$PREV")"
fi
# A first install has nothing to go back to: stop the restart loop and leave the files to debug.
systemctl stop "$SERVICE" || true
die "$SERVICE failed to become ready within ${TIMEOUT}s (first install, nothing to roll back to; stopped it); see journalctl -u $SERVICE"
