#!/bin/sh
# Guest side of scripts/bench: runs the benchmark module (devmem_bench.ko)
# and program (hmm_bench) that scripts/bench put in /tests/bench, and prints
# every result as a line starting with "@@BENCH ".
#
# KEY=VALUE arguments:
#   MODE=full|memory|scale   memory: boot-time memory figures only;
#                      scale: only hold SCALE_SIZE, migrate, read back
#   RES_COUNT=1000 RES_SIZE=268435456   reservation figure (after WARMUP
#                      reservations; also the "mtree" model allocator)
#   REG_SIZES=1G,4G,max REG_REPEATS=8 REG_MAX_REPEATS=4 registration figure
#                      ("max": the largest range whose memmap fits MAX_PCT %
#                      of MemAvailable; the APIs alternate, one sample a call)
#   REG_MAX=BYTES      size used for "max" instead of computing it
#   MAX_PCT=60
#   MIG_ITER=10 MIG_ROUNDS=5  migration round trips per buffer size and round
#   SCALE_PAGES=16384  pages migrated into the largest range
#   SCALE_SIZE=        size held for the scale figure (default: "max")
#   LOOKUP_RANGES=1,3,16,1024 LOOKUPS=1048576   pfn-less lookup model, on the
#                      held range split into that many pagemaps
#   WARMUP=1           untimed-for-the-verdict calls before each figure's
#                      samples (the first call of a boot is several times
#                      slower); their lines start with "warmup"
. /smdm/lib.sh
MODE=full RES_COUNT=1000 RES_SIZE=268435456 REG_SIZES=1G,4G,max
REG_REPEATS=8 REG_MAX_REPEATS=4 MAX_PCT=60 MIG_ITER=10 MIG_ROUNDS=5 SCALE_PAGES=16384
SCALE_SIZE= LOOKUP_RANGES=1,3,16,1024 LOOKUPS=1048576 WARMUP=1
for a in "$@"; do case $a in *=*) eval "${a%%=*}=\"\${a#*=}\"" ;; esac; done
B=/tests/bench
R=/sys/kernel/debug/devmem_bench/run
rc=0

say() { echo "@@BENCH $*"; }
meminfo() { sed "s/^/@@BENCH meminfo $1 /" /proc/meminfo; }
run() {
	if echo "$*" >$R; then
		sed 's/^/@@BENCH /' $R
	else
		say "error cmd='$*'"
		rc=1
		return 1
	fi
}
# Warm-up calls: results kept in the log, prefixed "warmup", not used.
warm() {
	if echo "$*" >$R; then
		sed 's/^/@@BENCH warmup /' $R
	else
		say "error cmd='$*'"
		rc=1
	fi
}
bytes() {
	case $1 in
	*G) echo $((${1%G} << 30)) ;;
	*M) echo $((${1%M} << 20)) ;;
	*) echo "$1" ;;
	esac
}
# Largest range, in whole GiB, whose memmap (sizeof(struct page) per 4 KiB)
# fits MAX_PCT % of MemAvailable.
max_size() {
	avail_kb=$(sed -n 's/^MemAvailable: *\([0-9]*\) kB/\1/p' /proc/meminfo)
	sp=$(sed -n 's/.*sizeof_page=\([0-9]*\).*/\1/p' $R)
	gib=$((avail_kb * 1024 / 100 * MAX_PCT / sp * 4096 >> 30))
	echo $((gib << 30))
}

# The window's ranges (debugfs).
DP=/sys/kernel/debug/device_private
say "kernel $(uname -r)"
say "clock $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource) cpus=$(grep -c ^processor /proc/cpuinfo)"
if grep -qw la57 /proc/cpuinfo; then say "paging 5"; else say "paging 4"; fi
say "cpu $(grep -m1 'address sizes' /proc/cpuinfo | sed 's/.*: //')"
meminfo boot
dmesg | grep -E 'Memory: [0-9]+K/|mem_section|device private|devmem' |
	sed 's/^/@@BENCH dmesg /'
# Console: warnings and worse only (scripts/vm still sees any WARNING/BUG),
# so that kernel messages do not cut into the result lines.
dmesg -n 5 2>/dev/null || echo 5 >/proc/sys/kernel/printk
insmod $B/devmem_bench.ko || { say "error insmod"; exit 1; }
run info
meminfo insmod
window=$(sed -n 's/.*window built=1 enabled=\([01]\).*/\1/p' $R)
[ "$window" = 1 ] && apis="window legacy" || apis=legacy

if [ "$MODE" = memory ]; then
	rmmod devmem_bench
	exit $rc
fi
api=${apis%% *}

scale() {
	meminfo before-hold
	if run hold "$api" "$1"; then
		meminfo holding
		for n in $(echo "$LOOKUP_RANGES" | tr , " "); do
			run lookup "$n" "$LOOKUPS"
		done
		# The module's "migrate" line, then hmm_bench's own check line.
		hb "" migrate $R "$SCALE_PAGES"
		run unhold
		meminfo after-unhold
	fi
}
# hmm_bench output with a prefix; its exit status counts.
hb() {
	_p=$1
	shift
	_o=$($B/hmm_bench "$@") || { rc=1; say "error hmm_bench $*"; }
	echo "$_o" | sed -e "s/^hmm_bench: /@@BENCH $_p/" \
		-e "s/^devmem_bench: /@@BENCH $_p/"
}
if [ "$MODE" = scale ]; then
	echo "== scale"
	t0=$(date +%s)
	scale "$(bytes "${SCALE_SIZE:-1G}")"
	say "scale_wall_s $(($(date +%s) - t0))"
	rmmod devmem_bench || { say "error rmmod"; rc=1; }
	say "done rc=$rc"
	exit $rc
fi

echo "== reservation"
for a in $apis mtree; do
	[ "$WARMUP" -gt 0 ] && warm reserve $a $RES_SIZE "$WARMUP"
	run reserve $a $RES_SIZE $RES_COUNT
done

echo "== registration"
run info >/dev/null
max=$(max_size)
say "max_size bytes=$max"
for s in $(echo "$REG_SIZES" | tr , " "); do
	[ "$s" = max ] && sz=${REG_MAX:-$max} || sz=$(bytes "$s")
	n=$REG_REPEATS
	[ "$s" = max ] && n=$REG_MAX_REPEATS
	if [ "$WARMUP" -gt 0 ]; then
		for a in $apis; do
			warm register $a "$sz" "$WARMUP"
		done
	fi
	# One sample per call, the APIs alternating, each going first in every
	# other pair: load on the host drifts, and both APIs should see the
	# same drift and the same order effects.
	i=0
	while [ $i -lt "$n" ]; do
		reg_apis=$apis
		[ $((i % 2)) = 1 ] && [ "$window" = 1 ] && reg_apis="legacy window"
		for api in $reg_apis; do
			run register $api "$sz" 1
		done
		i=$((i + 1))
	done
done

echo "== migration throughput (test_hmm)"
tput() {
	hb "$1 " throughput /dev/hmm_dmirror0 1024 "$MIG_ITER"
	hb "$1 " throughput /dev/hmm_dmirror0 512 "$MIG_ITER" thp
}
# MIG_ROUNDS rounds; in each, test_hmm is loaded once per placement the
# kernel has (window, then legacy_placement=1), so both see the same load.
placement=legacy
[ "$window" = 1 ] && placement=window
say "test_hmm placement=$placement"
r=0
while [ $r -lt "$MIG_ROUNDS" ]; do
	if modprobe test_hmm; then
		[ $r = 0 ] && [ "$WARMUP" -gt 0 ] &&
			$B/hmm_bench throughput /dev/hmm_dmirror0 1024 "$WARMUP" |
			sed 's/^hmm_bench: /@@BENCH warmup /'
		[ $r = 0 ] && head -c 300 $DP 2>/dev/null |
			tr '\n' ' ' | sed 's/^/@@BENCH device_private /' && echo
		tput "tput placement=$placement round=$r"
		rmmod test_hmm
	else
		say "error modprobe test_hmm"
		rc=1
	fi
	if [ "$window" = 1 ]; then
		if modprobe test_hmm legacy_placement=1; then
			tput "tput placement=legacy-same-kernel round=$r"
			rmmod test_hmm
		else
			say "error modprobe test_hmm legacy_placement=1"
			rc=1
		fi
	fi
	r=$((r + 1))
done

echo "== scale"
# After the registrations: the window's section roots exist now.
run info
max=$(max_size)
scale "$max"
echo "== bad input (each must fail with an errno, no kernel warning)"
for c in "" nonsense "reserve $api 0 5" "reserve $api 1000 1" \
	"reserve $api $RES_SIZE 0" "reserve bogus $RES_SIZE 1" \
	"register $api 123 1" "register $api 1073741824 0" \
	"register $api 70368744177664 1" "hold $api 0" "migrate 0x1000 1" \
	unhold; do
	if echo "$c" >$R 2>/tmp/bench-err; then
		say "badinput cmd='$c' result=accepted"
		rc=1
	else
		say "badinput cmd='$c' result=rejected err='$(sed 's/.*: //' /tmp/bench-err)'"
	fi
done
rmmod devmem_bench || { say "error rmmod"; rc=1; }
say "done rc=$rc"
exit $rc
