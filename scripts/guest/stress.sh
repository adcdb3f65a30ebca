#!/bin/sh
# Stress: four concurrent workers for STRESS_SECONDS (default 120, at most
# 600), then checks that every byte came back, that nothing leaked and that
# the kernel said nothing bad.  KTAP output.
#
#   scripts/robust stress [SECONDS]      (host; boots the DIMM guest)
#   stress.sh [STRESS_SECONDS=N] [STRESS_MIB=N]   (guest, /run.sh)
#
# Workers (each its own process, running at the same time):
#  regcycle   register/unregister device memory on /dev/hmm_dmirror1: each
#             round migrates STRESS_MIB MiB there (test_hmm registers new
#             256 MiB chunks: request_device_private_region() +
#             memremap_pages()), then HMM_DMIRROR_RELEASE evicts the pages
#             and unregisters every chunk (memunmap_pages() + release of the
#             window range); every byte checked from the CPU afterwards.
#  migrate0/1 two processes on /dev/hmm_dmirror0: migrate to the device,
#             check pagemap (device entries with window pfns), read every
#             byte back from the CPU (fault back), or every 4th round read
#             the device's copy (HMM_DMIRROR_READ) and unmap the range while
#             it is on the device.
#  hotplug    RAM hotplug through the host (scripts/vm pc-dimm over QMP):
#             plug a 512 MiB DIMM, online its blocks movable, fill a tmpfs
#             with a pattern, offline (migrates whatever the other workers
#             put there), check the pattern, unplug.  Falls back to nothing
#             (SKIP) without the host helper.
# All workers stop at the same deadline; a round in progress completes.
. /smdm/lib.sh
for a in "$@"; do case $a in STRESS_*=*) export "$a" ;; esac; done
SECS=${STRESS_SECONDS:-120}
MIB=${STRESS_MIB:-64}
[ "$SECS" -gt 600 ] && SECS=600
[ "$SECS" -lt 10 ] && SECS=10
T=/tmp/stress
mkdir -p $T
PROG=/tests/robust2/stress_hmm
MEM=/sys/devices/system/memory
MiB=$((1 << 20))
DIMM_ADDR=$((4 << 30))     # start of QEMU's device-memory area (--mem 2G)
DIMM_SIZE=$((512 * MiB))

echo "== robust2: stress"
echo "kernel: $(uname -r)"
if grep -qw la57 /proc/cpuinfo; then echo "paging: 5-level (la57)"; else echo "paging: 4-level"; fi
echo "workers: regcycle, migrate0, migrate1, hotplug; ${SECS} s; ${MIB} MiB per hmm worker"
ktap_plan 10

bad_re='BUG:|WARNING:|Oops|general protection|Kernel panic|UBSAN|KASAN|kmemleak|RCU detected stall|blocked for more than|Bad page'
dmesg_lines0=$(dmesg | wc -l)
iomem0=$T/iomem0
cp /proc/iomem $iomem0
mem0=$(mem_total_kb)
blocks0=$(ls -d $MEM/memory* | wc -l)

if [ ! -x $PROG ]; then
	echo "Bail out! no $PROG (run through scripts/robust)"
	exit 1
fi
modprobe test_hmm || { echo "Bail out! modprobe test_hmm failed"; exit 1; }
[ -c /dev/hmm_dmirror1 ] || sleep 1
sed 's/^/# device_private: /' /sys/kernel/debug/device_private

# --- hotplug worker (shell; the only user of the host channel) -------------
hp_use() { # start size
	_b=$(($1 / $(memblock_size)))
	_last=$((($1 + $2) / $(memblock_size)))
	while [ $_b -lt $_last ]; do
		_w=0
		while [ ! -d $MEM/memory$_b ] && [ $_w -lt 20 ]; do sleep 1; _w=$((_w + 1)); done
		[ "$(cat $MEM/memory$_b/state 2>/dev/null)" = online ] ||
			echo online_movable >$MEM/memory$_b/state || { echo "online $_b failed" >&2; return 1; }
		_b=$((_b + 1))
	done
	mkdir -p $T/fill && mount -t tmpfs -o size=$((HP_FILL + 4))m tmpfs $T/fill || return 1
	HP_SEED=$((HP_SEED + 1))
	$PROG fwrite -f $T/fill/f -m $HP_FILL -s $HP_SEED -n hotplug || { umount $T/fill; return 1; }
	_rc=0
	_b=$(($1 / $(memblock_size)))
	while [ $_b -lt $_last ]; do
		# Offlining retries while pages are busy (migrations in flight);
		# give it 60 s per block.
		# offline_pages() retries by itself until a signal: bound it.
		timeout 120 sh -c "echo offline >$MEM/memory$_b/state" 2>>$T/hp.err ||
			{ echo "offline of block $_b failed or took over 120 s" >&2; _rc=1; }
		_b=$((_b + 1))
	done
	if $PROG fcheck -f $T/fill/f -m $HP_FILL -s $HP_SEED -n hotplug >$T/fcheck.out; then
		HP_BYTES=$((HP_BYTES + HP_FILL * MiB))
	else
		cat $T/fcheck.out >&2
		_rc=1
	fi
	umount $T/fill
	return $_rc
}

hotplug_worker() {
	HP_FILL=128 HP_BYTES=0 HP_SEED=100 cycles=0 fails=0 why=
	end=$(($(date +%s) + SECS))
	while [ "$(date +%s)" -lt $end ]; do
		id=st$cycles
		out=$(host dimm_add $id $DIMM_SIZE $(printf '0x%x' $DIMM_ADDR)) || { why="dimm_add: $out"; fails=$((fails + 1)); break; }
		w=0
		until grep -q "^ *0*$(printf '%x' $DIMM_ADDR)-.* : System RAM" /proc/iomem; do
			w=$((w + 1)); [ $w -ge 20 ] && break; sleep 1
		done
		if [ $w -ge 20 ]; then why="no System RAM for the DIMM"; fails=$((fails + 1)); break; fi
		if ! hp_use $DIMM_ADDR $DIMM_SIZE 2>>$T/hp.err; then
			why="use: $(tail -1 $T/hp.err)"; fails=$((fails + 1))
			# Leave the DIMM plugged if it cannot be offlined.
			break
		fi
		out=$(host dimm_del $id) || { why="dimm_del: $out"; fails=$((fails + 1)); break; }
		w=0
		while grep -q "^ *0*$(printf '%x' $DIMM_ADDR)-" /proc/iomem; do
			w=$((w + 1)); [ $w -ge 20 ] && { why="range still in /proc/iomem"; fails=$((fails + 1)); break 2; }; sleep 1
		done
		cycles=$((cycles + 1))
	done
	echo "# hotplug: cycles=$cycles dimm=${DIMM_SIZE}B@$(printf '0x%x' $DIMM_ADDR) bytes_verified=$HP_BYTES fails=$fails ${why:+why=\"$why\"}"
	[ $fails = 0 ] && [ $cycles -gt 0 ]
}

HOST=0
ls /sys/bus/acpi/devices 2>/dev/null | grep -q PNP0C80 && HOST=1

t0=$(date +%s)
$PROG regcycle -d /dev/hmm_dmirror1 -m "$MIB" -t "$SECS" -s 11 -n regcycle >$T/regcycle.out 2>&1 &
p_reg=$!
$PROG migrate -d /dev/hmm_dmirror0 -m "$MIB" -t "$SECS" -s 22 -n migrate0 >$T/migrate0.out 2>&1 &
p_m0=$!
$PROG migrate -d /dev/hmm_dmirror0 -m "$MIB" -t "$SECS" -s 33 -n migrate1 >$T/migrate1.out 2>&1 &
p_m1=$!
if [ $HOST = 1 ]; then
	hotplug_worker >$T/hotplug.out 2>&1 &
	p_hp=$!
fi
# Progress every 30 s while the workers run; device memory must never show
# up in /proc/iomem (it lives in the window, listed in /sys/kernel/debug/device_private).
ticks=0 iomem_dev=0
while kill -0 $p_reg 2>/dev/null || kill -0 $p_m0 2>/dev/null || kill -0 $p_m1 2>/dev/null; do
	sleep 30
	ticks=$((ticks + 1))
	n=$(grep -c -i -E 'hmm_dmirror|device private' /proc/iomem)
	iomem_dev=$((iomem_dev + n))
	echo "# t=$(($(date +%s) - t0))s device_private ranges: $(($(wc -l </sys/kernel/debug/device_private) - 1)), iomem device ranges: $n, MemTotal $(mem_total_kb) kB"
done
wait $p_reg; rc_reg=$?
wait $p_m0; rc_m0=$?
wait $p_m1; rc_m1=$?
rc_hp=0
[ $HOST = 1 ] && { wait $p_hp; rc_hp=$?; }
echo "# workers ran $(($(date +%s) - t0)) s"

for w in regcycle migrate0 migrate1; do cat $T/$w.out; done
[ $rc_reg = 0 ] && t_ok "stress_regcycle (register/migrate/release/verify on hmm_dmirror1)" ||
	t_fail "stress_regcycle (rc=$rc_reg)"
[ $rc_m0 = 0 ] && t_ok "stress_migrate0 (migrate/fault-back/verify on hmm_dmirror0)" || t_fail "stress_migrate0 (rc=$rc_m0)"
[ $rc_m1 = 0 ] && t_ok "stress_migrate1 (migrate/fault-back/verify on hmm_dmirror0)" || t_fail "stress_migrate1 (rc=$rc_m1)"
if [ $HOST = 1 ]; then
	cat $T/hotplug.out
	[ $rc_hp = 0 ] && t_ok "stress_hotplug (pc-dimm add/online/fill/offline/remove)" || t_fail "stress_hotplug"
else
	t_skip "stress_hotplug: no pc-dimm hotplug (run with the DIMM guest: scripts/robust stress)"
fi

if [ $iomem_dev = 0 ] && [ $ticks -gt 0 ]; then
	t_ok "no device memory in /proc/iomem at any of $ticks samples"
else
	t_fail "device memory in /proc/iomem ($iomem_dev lines over $ticks samples)"
fi

# Totals over the workers.
tot=$(cat $T/regcycle.out $T/migrate0.out $T/migrate1.out |
	sed -n 's/.*bytes_verified_cpu=\([0-9]*\) bytes_verified_dev=\([0-9]*\).*/\1 \2/p' |
	awk '{c += $1; d += $2} END {printf "%.0f %.0f", c, d}')
echo "# bytes verified: cpu $(echo $tot | cut -d' ' -f1), device reads $(echo $tot | cut -d' ' -f2)"

# Unload and look for leftovers.
sed 's/^/# device_private before unload: /' /sys/kernel/debug/device_private
if rmmod test_hmm; then t_ok "rmmod test_hmm after the stress"; else t_fail "rmmod test_hmm after the stress"; fi
left=$(sed 1d /sys/kernel/debug/device_private | wc -l)
first=$(head -1 /sys/kernel/debug/device_private)
if [ "$left" = 0 ] && [ -n "$first" ]; then
	t_ok "no device_private range left after unload (window: $first)"
else
	sed 's/^/# left: /' /sys/kernel/debug/device_private
	t_fail "device_private ranges left after unload: $left"
fi
# /proc/iomem must be what it was before: no hmm_dmirror, no DIMM left over.
if diff $iomem0 /proc/iomem >$T/iomem.diff && ! grep -q hmm_dmirror /proc/iomem; then
	t_ok "/proc/iomem unchanged after unload and unplug ($(wc -l </proc/iomem) lines)"
else
	sed 's/^/# iomem diff: /' $T/iomem.diff
	t_fail "/proc/iomem changed"
fi
mem1=$(mem_total_kb)
blocks1=$(ls -d $MEM/memory* | wc -l)
if [ "$mem1" = "$mem0" ] && [ "$blocks1" = "$blocks0" ]; then
	t_ok "MemTotal ($mem1 kB) and memory blocks ($blocks1) as before"
else
	t_fail "MemTotal $mem0 -> $mem1 kB, memory blocks $blocks0 -> $blocks1"
fi
dmesg | tail -n +"$((dmesg_lines0 + 1))" >$T/dmesg
if grep -E "$bad_re" $T/dmesg >$T/bad; then
	sed 's/^/# dmesg: /' $T/bad | head -20
	t_fail "kernel log clean during the stress ($(wc -l <$T/bad) bad lines)"
else
	t_ok "kernel log clean during the stress ($(wc -l <$T/dmesg) new lines, none matching)"
fi
grep -c 'isolation failed\|failed to isolate' $T/dmesg | sed 's/^/# offline isolation retries logged: /'
t_totals
