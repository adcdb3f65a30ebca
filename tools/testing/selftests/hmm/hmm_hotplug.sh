#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Device-private memory and memory hotplug side by side.
#
#   hmm_hotplug.sh [TEST_HMM_PARAM=VALUE ...]     (e.g. legacy_placement=1)
#
# The legacy placement of device-private memory (request_free_mem_region()
# from the top of iomem_resource) takes the physical addresses where memory
# hotplug adds RAM.  With the pfn window, RAM can be added there while
# test_hmm has its memory registered and in use:
#
#  hotplug_dimm_legacy_range     a pc-dimm plugged by the host over the range
#                                the legacy placement takes, onlined movable,
#                                filled, offlined and unplugged, while pages
#                                keep migrating to and from the device
#  hotplug_device_data           the device data survived that
#  hotplug_register_cycles       register device memory (module load, or
#                                migration after HMM_DMIRROR_RELEASE), add
#                                RAM there, use it, remove it, unregister;
#                                $HMM_HOTPLUG_CYCLES times (default 50)
#  hotplug_probe_legacy_address  /sys/devices/system/memory/probe at the
#                                legacy address (never onlined: no backing)
#
# The pc-dimm tests need a VM whose host can plug pc-dimms (ACPI memory
# slots) and a command, named by HMM_DIMM_HELPER, that asks it to:
#
#   $HMM_DIMM_HELPER add ID SIZE ADDR    plug SIZE bytes at ADDR (hex)
#   $HMM_DIMM_HELPER del ID              unplug it again
#
# exiting 0 on success and printing one line either way.  They are skipped
# without it.  Must be root; runs last of the suite, as the probed memory
# block cannot be removed again; the probe test is skipped where the
# architecture has no probe interface (CONFIG_ARCH_MEMORY_PROBE: x86 and
# powerpc).  Exit status as kselftest: 0 pass, 1 fail, 4 skip (not root, or
# neither pc-dimm hotplug nor the probe interface).

DIR=$(cd "$(dirname "$0")" && pwd)
HOLD=$DIR/hmm_hold
CYCLES=${HMM_HOTPLUG_CYCLES:-50}
PARAMS="$*"
TMP=${TMPDIR:-/tmp}/hmm_hotplug.$$
MEM=/sys/devices/system/memory
GiB=$((1 << 30))
MiB=$((1 << 20))

# The host's pc-dimm hotplug: the helper command and ACPI memory slots.
HOST=0
if [ -n "${HMM_DIMM_HELPER:-}" ] && [ -x "$HMM_DIMM_HELPER" ] &&
   ls /sys/bus/acpi/devices 2>/dev/null | grep -q PNP0C80; then
	HOST=1
fi
dimm() { "$HMM_DIMM_HELPER" "$@"; }

n=0 pass=0 fail=0 skip=0
k_pass() { n=$((n + 1)); pass=$((pass + 1)); echo "ok $n $1"; }
k_fail() { n=$((n + 1)); fail=$((fail + 1)); echo "not ok $n $1"; }
k_skip() { n=$((n + 1)); skip=$((skip + 1)); echo "ok $n $1 # SKIP $2"; }
msg() { echo "# $*"; }
totals() {
	echo "# Totals: pass:$pass fail:$fail xfail:0 xpass:0 skip:$skip error:0"
	rm -rf "$TMP"
	[ $fail = 0 ] && exit 0
	exit 1
}
bail() {
	echo "Bail out! $*"
	rm -rf "$TMP"
	exit 1
}
skip_all() {
	echo "1..0 # SKIP $*"
	exit 4
}

echo "TAP version 13"
[ "$(id -u)" = 0 ] || skip_all "must be root"
[ $HOST = 1 ] || [ -w $MEM/probe ] ||
	skip_all "no pc-dimm hotplug and no $MEM/probe (CONFIG_ARCH_MEMORY_PROBE)"
[ -x "$HOLD" ] || bail "no $HOLD"
echo "1..4"
mkdir -p "$TMP"

hex() { printf '%x' "$1"; }

# "start end" (decimal) of the hmm_dmirror ranges in /proc/iomem.
iomem_hmm() {
	sed -n 's/^ *\([0-9a-f]*\)-\([0-9a-f]*\) : hmm_dmirror$/\1 \2/p' /proc/iomem |
		while read -r s e; do echo $((0x$s)) $((0x$e)); done
}

has_ram_at() { # start size
	_s=$(hex "$1")
	grep -q "^ *0*$_s-[0-9a-f]* : System RAM" /proc/iomem
}

block_size=$((0x$(cat $MEM/block_size_bytes)))

blocks_of() { # start size
	_i=$(($1 / block_size))
	while [ $_i -lt $((($1 + $2) / block_size)) ]; do
		echo $_i
		_i=$((_i + 1))
	done
}

wait_for() { # seconds command...
	_w=$1
	shift
	while [ "$_w" -gt 0 ]; do
		"$@" && return 0
		sleep 1
		_w=$((_w - 1))
	done
	"$@"
}

load_hmm() {
	# shellcheck disable=SC2086
	modprobe test_hmm $PARAMS || return 1
	[ -c /dev/hmm_dmirror0 ] || sleep 1
	[ -c /dev/hmm_dmirror0 ]
}

unload_hmm() {
	[ -d /sys/module/test_hmm ] || return 0
	rmmod test_hmm
}

# Where the legacy placement puts test_hmm's memory on this machine: load
# it with legacy_placement=1 (a kernel without the parameter ignores it and
# places it the legacy way anyway) and read /proc/iomem.
unload_hmm || bail "rmmod test_hmm failed"
modprobe test_hmm legacy_placement=1 2>/dev/null || bail "modprobe test_hmm failed"
LEG_START= LEG_END=
for r in $(iomem_hmm | tr ' ' ':'); do
	s=${r%:*} e=${r#*:}
	[ -z "$LEG_START" ] || [ "$s" -lt "$LEG_START" ] && LEG_START=$s
	[ -z "$LEG_END" ] || [ "$e" -gt "$LEG_END" ] && LEG_END=$e
done
rmmod test_hmm || bail "rmmod test_hmm failed"
[ -n "$LEG_START" ] || bail "test_hmm legacy_placement=1 left no hmm_dmirror range in /proc/iomem"
msg "legacy placement: $(hex $LEG_START)-$(hex $LEG_END) ($(((LEG_END + 1 - LEG_START) / MiB)) MiB)"
msg "test_hmm parameters for the tests: '${PARAMS}'"

load_hmm || bail "modprobe test_hmm $PARAMS failed"
grep hmm_dmirror /proc/iomem | sed 's/^/# iomem: /'
DP=/sys/kernel/debug/device_private
[ -r "$DP" ] && sed "s/^/# device_private: /" "$DP"

# Device data in use for the whole run, moving between device and RAM.
HOLD_RC=
"$HOLD" -d /dev/hmm_dmirror1 -m 32 -r "$TMP/ready" -s "$TMP/stop" >"$TMP/hold.out" 2>&1 &
HOLD_PID=$!
wait_for 30 test -e "$TMP/ready" || msg "hmm_hold did not get ready"

# Online a RAM range movable, fill tmpfs with a pattern, offline it again
# (which migrates whatever landed there) and check the pattern.
use_ram() { # start size fill-MiB
	for b in $(blocks_of "$1" "$2"); do
		# The blocks appear in sysfs after the System RAM resource.
		wait_for 10 test -d $MEM/memory$b || { msg "no memory block $b"; return 1; }
		[ "$(cat $MEM/memory$b/state)" = online ] ||
			echo online_movable >$MEM/memory$b/state ||
			{ msg "cannot online block $b"; return 1; }
	done
	mkdir -p "$TMP/fill" && mount -t tmpfs -o size=$(($3 + 8))m tmpfs "$TMP/fill" || return 1
	dd if=/dev/zero bs=1M count="$3" 2>/dev/null | tr '\0' 'Z' >"$TMP/fill/f"
	_ok=0
	for b in $(blocks_of "$1" "$2"); do
		echo offline >$MEM/memory$b/state || { msg "cannot offline block $b"; _ok=1; }
	done
	if [ "$(tr -d Z <"$TMP/fill/f" | wc -c)" != 0 ] ||
		[ "$(wc -c <"$TMP/fill/f")" != $(($3 * MiB)) ]; then
		msg "tmpfs data corrupt"
		_ok=1
	fi
	umount "$TMP/fill"
	return $_ok
}

# Plug a pc-dimm (host), check the guest got System RAM for it, use it,
# unplug it.
dimm_cycle() { # id start size fill-MiB
	_out=$(dimm add "$1" "$3" "0x$(hex "$2")") ||
		{ msg "host refused the DIMM at $(hex "$2"): $_out"; return 1; }
	if ! wait_for 10 has_ram_at "$2" "$3"; then
		msg "DIMM $1 plugged at $(hex "$2"), but the guest has no System RAM there"
		dmesg | grep -E 'conflicts with|add_memory|acpi_memhotplug' | tail -2 |
			sed 's/^/# dmesg: /'
		# Left plugged: ejecting a DIMM whose memory the guest never
		# added oopses kernels with the legacy placement.
		msg "DIMM $1 left plugged"
		HELD_ID=$1 HELD_START=$2 HELD_END=$(($2 + $3))
		return 1
	fi
	use_ram "$2" "$3" "$4" || { dimm del "$1" >/dev/null; return 1; }
	_out=$(dimm del "$1") || { msg "unplug failed: $_out"; return 1; }
	wait_for 10 sh -c "! grep -q '^ *0*$(hex "$2")-' /proc/iomem" ||
		{ msg "range still in /proc/iomem after unplug"; return 1; }
}

# Test 3's pc-dimms go at the last 256 MiB of the legacy range.
CYC_START=$(((LEG_END + 1 - 256 * MiB) / (256 * MiB) * (256 * MiB)))

# 1. A 1 GiB pc-dimm over the legacy range, up to where test 3's begin: a
#    kernel with the legacy placement cannot add it, and it stays plugged
#    (see dimm_cycle), but test 3 can still plug its own and fail for the
#    same conflict instead of for QEMU refusing an overlapping DIMM.
if [ $HOST = 0 ]; then
	k_skip hotplug_dimm_legacy_range "no pc-dimm hotplug (host helper, ACPI memory slots)"
else
	D=$((CYC_START - GiB))
	# A legacy range of 256 MiB or less: over it, as test 3's will be.
	[ "$LEG_START" -lt "$CYC_START" ] || D=$((LEG_START / GiB * GiB))
	msg "pc-dimm at $(hex $D), 1 GiB"
	if dimm_cycle hp0 $D $GiB 256; then
		k_pass hotplug_dimm_legacy_range
	else
		k_fail hotplug_dimm_legacy_range
	fi
fi

# 2. The device data held through the RAM hotplug.
touch "$TMP/stop"
wait $HOLD_PID
HOLD_RC=$?
sed 's/^# //; s/^/# /' "$TMP/hold.out"
if [ "$HOLD_RC" = 0 ]; then
	k_pass hotplug_device_data
else
	k_fail hotplug_device_data
fi

# 3. Register and unregister device memory, RAM added and removed between.
if [ $HOST = 0 ]; then
	k_skip hotplug_register_cycles "no pc-dimm hotplug (host helper, ACPI memory slots)"
else
	D=$CYC_START
	msg "$CYCLES cycles, pc-dimm of 256 MiB at $(hex $D)"
	i=1 why=
	# Test 1's DIMM ends where this one begins: should a DIMM the guest
	# could not add still cover the range, plugging over it cannot be tried.
	if [ -n "${HELD_ID:-}" ] && [ $D -lt "$HELD_END" ] &&
	   [ $((D + 256 * MiB)) -gt "$HELD_START" ]; then
		msg "DIMM $HELD_ID plugged at $(hex $HELD_START), never added" \
		    "by the guest, still covers $(hex $D)"
		why="the range is held by a DIMM the guest could not add" i=0
	fi
	while [ -z "$why" ] && [ $i -le "$CYCLES" ]; do
		# Register: a fresh module load every 5th cycle, else the chunks
		# the previous cycle's HMM_DMIRROR_RELEASE dropped come back on
		# the first migration.
		if [ $((i % 5)) = 0 ]; then
			unload_hmm && load_hmm || { why="test_hmm reload failed"; break; }
		fi
		"$HOLD" -d /dev/hmm_dmirror0 -m 8 -r "$TMP/r$i" -s "$TMP/s$i" >"$TMP/c.out" 2>&1 &
		pid=$!
		wait_for 20 test -e "$TMP/r$i" || { why="hmm_hold: $(cat "$TMP/c.out")"; break; }
		dimm_cycle hc$i $D $((256 * MiB)) 16 || { why="RAM add/use/remove failed"; break; }
		touch "$TMP/s$i"
		wait $pid || { why="device data: $(cat "$TMP/c.out")"; break; }
		# Unregister.
		"$HOLD" -d /dev/hmm_dmirror0 -m 4 -R -1 >"$TMP/c.out" 2>&1 ||
			{ why="release: $(cat "$TMP/c.out")"; break; }
		i=$((i + 1))
	done
	if [ -z "$why" ]; then
		k_pass hotplug_register_cycles
	else
		msg "cycle $i: $why"
		# Gone before test 4 starts its own on the same device.
		[ -n "${pid:-}" ] && kill $pid 2>/dev/null && wait $pid
		k_fail hotplug_register_cycles
	fi
fi

# 4. Probe RAM at the legacy address with device memory registered.  The
#    block is left offline (nothing backs it) and cannot be removed.
"$HOLD" -d /dev/hmm_dmirror0 -m 8 -1 >/dev/null 2>&1
P=$((LEG_START / block_size * block_size))
b=$((P / block_size))
if [ ! -w $MEM/probe ]; then
	k_skip hotplug_probe_legacy_address "no $MEM/probe (CONFIG_ARCH_MEMORY_PROBE)"
elif [ -d $MEM/memory$b ]; then
	k_skip hotplug_probe_legacy_address "memory block $b exists already"
elif err=$(echo "0x$(hex $P)" 2>&1 >$MEM/probe) && [ -d $MEM/memory$b ] &&
	[ "$(cat $MEM/memory$b/state)" = offline ]; then
	msg "probed memory block $b at $(hex $P) (left offline)"
	k_pass hotplug_probe_legacy_address
else
	msg "probe at $(hex $P): ${err:-no memory block $b}"
	dmesg | grep 'conflicts with' | tail -1 | sed 's/^/# dmesg: /'
	k_fail hotplug_probe_legacy_address
fi
totals
