#!/bin/sh
# HMM_DMIRROR_READ of test_hmm's own device private pages after an
# invalidation emptied the mirror (patches/1-fixes/0001): the series must
# return the data; unfixed test_hmm (base) oopses in dmirror_do_read(), so
# scripts/test boots this alone.  scripts/guest-progs/hmm_devread.c says
# what is checked.
#
# Host side (the guest has no compiler): build the program for a kernel
# build and print the directory to hand to scripts/vm --add:
#   scripts/guest/devread.sh build base|series|BUILD_DIR
# Guest side:
#   scripts/vm --kernel base|series --add DIR --run scripts/guest/devread.sh
if [ "${1:-}" = build ]; then
	[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
	set -euo pipefail
	. "$(dirname "$0")/../lib.sh"
	case ${2:-} in
	base | series) out=$(build_for "$2") name=$2 ;;
	"") die "usage: devread.sh build base|series|BUILD_DIR" ;;
	*) out=$(cd "$2" && pwd) name=$(basename "$out") ;;
	esac
	[ -d "$out/usr/include/linux" ] || die "no kernel headers in $out (run scripts/build)"
	src=$(readlink -f "$out/source")
	dest=$CACHE/guest-progs/$name
	mkdir -p "$dest/tests/guest-progs"
	gcc -static -O2 -Wall -I "$src" -isystem "$out/usr/include" \
		-o "$dest/tests/guest-progs/hmm_devread" "$REPO/scripts/guest-progs/hmm_devread.c"
	echo "$dest"
	exit 0
fi

. /smdm/lib.sh
PROG=/tests/guest-progs/hmm_devread
echo "== devread: HMM_DMIRROR_READ of device pages the mirror lost"
echo "kernel: $(uname -r)"
[ -x $PROG ] || { echo "Bail out! no $PROG (scripts/guest/devread.sh build, scripts/vm --add)"; exit 1; }
modprobe test_hmm || { echo "Bail out! modprobe test_hmm failed"; exit 1; }
grep hmm_dmirror /proc/iomem | sed 's/^/# iomem: /'
DP=/sys/kernel/debug/device_private
[ -r $DP ] && sed 's/^/# device_private: /' $DP
rc=0
$PROG /dev/hmm_dmirror0 16 || rc=1
echo "== devread: unload"
_t_n=0
ktap_plan 1
if rmmod test_hmm; then t_ok "rmmod test_hmm"; else t_fail "rmmod test_hmm"; rc=1; fi
t_totals
exit $rc
