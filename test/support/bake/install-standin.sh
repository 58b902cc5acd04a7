#!/bin/bash
# TEMPORARY stand-in for deploy/install.sh --root (helper B writes the real one). It does only
# what the baker relies on, with the contract's interface, so the baker's tests run before the
# real installer lands. Used only when the bundle has no real install.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="" boot="" config="$here/config.example.toml"
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root="$2"; shift 2 ;;
    --boot-dir) boot="$2"; shift 2 ;;
    --config) config="$2"; shift 2 ;;
    *) echo "install.sh: unknown option $1" >&2; exit 64 ;;
  esac
done
[ -n "$root" ] || { echo "install.sh: stand-in needs --root" >&2; exit 64; }
boot="${boot:-$root/boot/firmware}"
for g in i2c gpio; do grep -q "^$g:" "$root/etc/group" || groupadd --prefix "$root" --system "$g"; done
grep -q '^fieldrelay:' "$root/etc/passwd" || useradd --prefix "$root" --system --user-group --no-create-home \
  --home-dir /var/lib/fieldrelay --shell /usr/sbin/nologin --groups i2c,gpio fieldrelay
install -D -m 0755 "$here/fieldrelay" "$root/usr/local/bin/fieldrelay"; echo "installed /usr/local/bin/fieldrelay"
install -D -m 0644 "$here/systemd/fieldrelay.service" "$root/etc/systemd/system/fieldrelay.service"
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sfn /etc/systemd/system/fieldrelay.service "$root/etc/systemd/system/multi-user.target.wants/fieldrelay.service"
if [ ! -e "$root/etc/fieldrelay/config.toml" ]; then
  install -D -m 0640 -o 0 -g "$(awk -F: '$1=="fieldrelay"{print $3}' "$root/etc/group")" "$config" "$root/etc/fieldrelay/config.toml"
fi
install -d -m 0750 -o "$(awk -F: '$1=="fieldrelay"{print $3}' "$root/etc/passwd")" \
  -g "$(awk -F: '$1=="fieldrelay"{print $3}' "$root/etc/group")" "$root/var/lib/fieldrelay"
{ echo "# >>> fieldrelay >>>"; cat "$here/overlays/config.txt"; echo "# <<< fieldrelay <<<"; } >> "$boot/config.txt"
mkdir -p "$boot/overlays"; cp "$here/overlays/fieldrelay-gpio.dtbo" "$boot/overlays/"
echo "enabled fieldrelay.service"
