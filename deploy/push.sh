#!/usr/bin/env bash
# push.sh: install fieldrelay on a device from a workstation: scp the bundle to a temp dir on the
# device, run its install.sh there as root (directly when logged in as root, else through sudo),
# show the service status, remove the temp dir, and exit with the installer's status.
#
#   push.sh user@host [--port N] [--identity KEY] [--bundle DIR] [--ssh-option OPT]...
#           [-- install.sh args...]
#
# --ssh-option passes `-o OPT` to both ssh and scp (e.g. StrictHostKeyChecking=accept-new for a
# freshly flashed device, or ProxyJump=bastion); it may be repeated.
# --bundle defaults to the checkout's dist/bundle (`npm run build`). Arguments after `--` go to install.sh
# unchanged (e.g. `-- --no-rtc`, or `-- --root /tmp/tree` in tests).
set -euo pipefail

die() {
	printf 'push.sh: %s\n' "$*" >&2
	exit 1
}
usage() {
	printf 'usage: push.sh user@host [--port N] [--identity KEY] [--bundle DIR] [--ssh-option OPT]... [-- install.sh args...]\n' >&2
	exit 64
}

TARGET=""
PORT=""
IDENTITY=""
BUNDLE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/dist/bundle"
INSTALL_ARGS=()
EXTRA_OPTS=()
while (($#)); do
	case "$1" in
	--port) PORT="${2:?--port needs a number}"; shift 2 ;;
	--identity) IDENTITY="${2:?--identity needs a key file}"; shift 2 ;;
	--bundle) BUNDLE="${2:?--bundle needs a directory}"; shift 2 ;;
	--ssh-option) EXTRA_OPTS+=(-o "${2:?--ssh-option needs OPTION=VALUE}"); shift 2 ;;
	--) shift; INSTALL_ARGS=("$@"); break ;;
	-h | --help) usage ;;
	-*) printf 'push.sh: unknown option %s\n' "$1" >&2; usage ;;
	*)
		[[ -z $TARGET ]] || { printf 'push.sh: more than one destination (%s, %s)\n' "$TARGET" "$1" >&2; usage; }
		TARGET="$1"
		shift
		;;
	esac
done
[[ -n $TARGET ]] || usage
[[ -z $PORT || $PORT =~ ^[0-9]+$ ]] || die "--port must be a number, got '$PORT'"
[[ -f $BUNDLE/install.sh && -f $BUNDLE/fieldrelay ]] ||
	die "$BUNDLE is not a bundle (no install.sh or fieldrelay in it); run npm run build or pass --bundle DIR"

# One connection setting for ssh and scp (scp spells the port -P). BatchMode: never stop at a
# password prompt in a script.
OPTS=(-o BatchMode=yes -o ConnectTimeout=15 "${EXTRA_OPTS[@]}")
[[ -z $IDENTITY ]] || OPTS+=(-i "$IDENTITY" -o IdentitiesOnly=yes)
SSH=(ssh "${OPTS[@]}")
SCP=(scp -q -r "${OPTS[@]}")
[[ -z $PORT ]] || { SSH+=(-p "$PORT"); SCP+=(-P "$PORT"); }

remote() { "${SSH[@]}" "$TARGET" "$@"; }
quote() { printf '%q ' "$@"; }

REMOTE_DIR="$(remote 'mktemp -d /tmp/fieldrelay-push.XXXXXX')" || die "cannot reach $TARGET over ssh"
[[ $REMOTE_DIR == /tmp/fieldrelay-push.* ]] || die "unexpected temp dir from $TARGET: '$REMOTE_DIR'"
cleanup() { remote "rm -rf $(quote "$REMOTE_DIR")" || printf 'push.sh: could not remove %s on %s\n' "$REMOTE_DIR" "$TARGET" >&2; }
trap cleanup EXIT

printf 'push.sh: copying %s (%s) to %s:%s\n' "$BUNDLE" "$(head -n 1 "$BUNDLE/VERSION" 2>/dev/null || echo 'no VERSION')" "$TARGET" "$REMOTE_DIR"
"${SCP[@]}" "${BUNDLE%/}" "$TARGET:$REMOTE_DIR/bundle" || die "scp to $TARGET failed"

# Root runs install.sh directly; anyone else through sudo (-n: fail instead of prompting). bash
# runs it, so the copy needs no exec bit.
INSTALL="bash $(quote "$REMOTE_DIR/bundle/install.sh" "${INSTALL_ARGS[@]}")"
printf 'push.sh: running install.sh %s on %s\n' "${INSTALL_ARGS[*]}" "$TARGET"
set +e
remote "if [ \"\$(id -u)\" -eq 0 ]; then $INSTALL; else sudo -n $INSTALL; fi"
STATUS=$?
set -e

LIVE=1
for a in "${INSTALL_ARGS[@]}"; do [[ $a != --root ]] || LIVE=0; done
if ((LIVE)); then
	remote "systemctl status fieldrelay --no-pager" || true
fi
if ((STATUS == 0)); then
	printf 'push.sh: install.sh succeeded on %s\n' "$TARGET"
else
	printf 'push.sh: install.sh failed on %s (exit %d)\n' "$TARGET" "$STATUS" >&2
fi
exit "$STATUS"
