#!/bin/sh
# The hotplug conflict, end to end (run by scripts/demo inside the guest).
#
# 1. Control: hotplug a 1 GiB pc-dimm at DIMM_ADDR without test_hmm, online
#    it, use it, offline it, unplug it.
# 2. Load test_hmm (its device-private chunks are placed by the kernel).
# 3. Hotplug the same DIMM at the same address again and see whether the
#    guest gets the memory.
# Verdict line: "conflict reproduced: <error>" (only when test_hmm's ranges lie
# inside the DIMM's range) or "hotplug ok with test_hmm loaded" (only when they
# lie in the device private window, /sys/kernel/debug/device_private);
# anything else is "cannot judge" (exit 2).
. /smdm/lib.sh
for a in "$@"; do case $a in *=*) export "$a" ;; esac; done
DIMM_ADDR=${DIMM_ADDR:-0xfc0000000}
DIMM_SIZE=${DIMM_SIZE:-0x40000000}
HMM_ARGS=${HMM_ARGS:-}

addr_hex=$(printf '%x' $((DIMM_ADDR)))
end_hex=$(printf '%x' $((DIMM_ADDR + DIMM_SIZE - 1)))
bs=$(memblock_size)

ram_at_dimm() { grep -q "^ *0*$addr_hex-0*$end_hex : System RAM" /proc/iomem; }

# Blocks of the DIMM range, by number.
dimm_blocks() {
	i=$((DIMM_ADDR / bs))
	while [ $i -lt $(((DIMM_ADDR + DIMM_SIZE) / bs)) ]; do
		echo $i
		i=$((i + 1))
	done
}

wait_for() { # seconds, command...
	_n=$1
	shift
	while [ "$_n" -gt 0 ]; do
		"$@" && return 0
		sleep 1
		_n=$((_n - 1))
	done
	return 1
}

# Online the DIMM's blocks, fill memory so the new blocks are used, verify
# the data, free it, offline the blocks.  Returns 0 when all of that worked.
use_dimm() {
	for i in $(dimm_blocks); do
		b=/sys/devices/system/memory/memory$i
		# add_memory() claims the System RAM resource before it creates
		# the memory block devices: give it a moment under load.
		wait_for 10 test -d $b || { echo "no memory block $i"; return 1; }
		[ "$(cat $b/state)" = online ] || echo online_movable >$b/state ||
			{ echo "cannot online block $i"; return 1; }
	done
	total=$(mem_total_kb)
	free_movable() {
		awk '/^Node .* zone *Movable/{m=1;next} /^Node/{m=0} m&&/nr_free_pages/{s+=$2} END{print s+0}' /proc/zoneinfo
	}
	before=$(free_movable)
	# Fill 256 MiB of tmpfs (movable pages) with a pattern, then check it.
	mkdir -p /tmp/fill && mount -t tmpfs -o size=300m tmpfs /tmp/fill
	i=0
	while [ $i -lt 4 ]; do
		dd if=/dev/zero bs=1M count=64 2>/dev/null | tr '\0' "$(printf "\\$(printf %o $((65 + i)))")" >/tmp/fill/f$i
		i=$((i + 1))
	done
	during=$(free_movable)
	ok=1
	i=0
	while [ $i -lt 4 ]; do
		c=$(printf "\\$(printf %o $((65 + i)))")
		[ "$(tr -d "$c" </tmp/fill/f$i | wc -c)" = 0 ] || ok=0
		i=$((i + 1))
	done
	umount /tmp/fill
	echo "DIMM online: MemTotal ${total} kB, Movable free pages $before -> $during while filled, data $([ $ok = 1 ] && echo verified || echo CORRUPT)"
	[ $ok = 1 ] && [ $((before - during)) -gt 32768 ] || return 1
	for i in $(dimm_blocks); do
		echo offline >/sys/devices/system/memory/memory$i/state ||
			{ echo "cannot offline block $i"; return 1; }
	done
}

echo "== guest: $(uname -r), $(grep -m1 'address sizes' /proc/cpuinfo)"
echo "== 1. control: pc-dimm at $DIMM_ADDR without test_hmm"
control=fail
if host dimm_add d1 $DIMM_SIZE $DIMM_ADDR; then
	if wait_for 10 ram_at_dimm; then
		grep "$addr_hex-" /proc/iomem
		if use_dimm && host dimm_del d1 && wait_for 10 sh -c "! grep -q '$addr_hex-' /proc/iomem"; then
			control=ok
		fi
	else
		echo "no System RAM at $addr_hex after the plug"
	fi
fi
echo "control: $control"
[ $control = ok ] || { echo "RESULT: control hotplug failed, cannot judge"; exit 2; }

echo "== 2. modprobe test_hmm $HMM_ARGS"
modprobe test_hmm $HMM_ARGS || { echo "RESULT: modprobe test_hmm failed"; exit 2; }
dmesg | grep 'added new .* chunk' | sed 's/^/   /'
echo "/proc/iomem hmm_dmirror ranges:"
grep hmm_dmirror /proc/iomem | sed 's/^/   /' || echo "   (none)"
[ -r /sys/kernel/debug/device_private ] && { echo "/sys/kernel/debug/device_private:"; sed 's/^/   /' /sys/kernel/debug/device_private; }

# Where test_hmm's memory is decides what the verdict may say: inside the
# DIMM's range (the cause of the conflict: legacy placement), or in the
# device private window (the fix).  Checked, not only printed.
DP=/sys/kernel/debug/device_private
dimm_lo=$((DIMM_ADDR)) dimm_hi=$((DIMM_ADDR + DIMM_SIZE - 1))
n_iomem=0 n_in_dimm=0 n_dp=0 n_in_win=0 win=
for r in $(iomem_ranges hmm_dmirror | tr ' ' -); do
	n_iomem=$((n_iomem + 1))
	[ $((0x${r%-*})) -ge $dimm_lo ] && [ $((0x${r#*-})) -le $dimm_hi ] && n_in_dimm=$((n_in_dimm + 1))
done
if [ -r $DP ]; then
	win=$(sed -n '1s/^\([0-9a-f]*-[0-9a-f]*\) : Device private memory$/\1/p' $DP)
	for r in $(sed -n 's/^  *\([0-9a-f]*-[0-9a-f]*\) : hmm_dmirror$/\1/p' $DP); do
		n_dp=$((n_dp + 1))
		[ -n "$win" ] && [ $((0x${r%-*})) -ge $((0x${win%-*})) ] &&
			[ $((0x${r#*-})) -le $((0x${win#*-})) ] && n_in_win=$((n_in_win + 1))
	done
fi
if [ $n_iomem -gt 0 ] && [ $n_in_dimm = $n_iomem ] && [ $n_dp = 0 ]; then
	placement=dimm
	echo "placement: test_hmm's $n_iomem ranges lie inside the DIMM's range $(printf '%x-%x' $dimm_lo $dimm_hi)"
elif [ $n_dp -gt 0 ] && [ $n_in_win = $n_dp ] && [ $n_iomem = 0 ]; then
	placement=window
	echo "placement: test_hmm's $n_dp ranges lie in the device private window $win, none in /proc/iomem"
else
	placement=other
	echo "placement: neither: $n_iomem ranges in /proc/iomem ($n_in_dimm inside the DIMM's range), $n_dp in $DP ($n_in_win inside the window '${win:-none}')"
fi

echo "== 3. the same pc-dimm at $DIMM_ADDR with test_hmm loaded"
dmesg -c >/dev/null
if ! msg=$(host dimm_add d2 $DIMM_SIZE $DIMM_ADDR); then
	[ $placement = dimm ] || { echo "RESULT: cannot judge: QEMU refused the DIMM ($msg), but test_hmm's memory is not inside its range"; exit 2; }
	echo "RESULT: conflict reproduced: QEMU refused the DIMM: $msg"
	exit 1
fi
echo "QEMU: $msg"
if wait_for 10 ram_at_dimm; then
	if use_dimm && host dimm_del d2; then
		grep -q hmm_dmirror /proc/iomem && echo "(test_hmm still has ranges in /proc/iomem)"
		if [ $placement != window ]; then
			echo "RESULT: cannot judge: the DIMM works, but test_hmm's memory is not in the window (placement: $placement)"
			exit 2
		fi
		echo "RESULT: hotplug ok with test_hmm loaded"
		exit 0
	fi
	echo "RESULT: cannot judge: the DIMM got System RAM, but using or unplugging it failed"
	exit 2
fi
echo "dmesg after the plug:"
dmesg | sed 's/^/   /' | tail -8
# The conflict is the kernel refusing the DIMM's range because device
# private memory holds it: its message, and no System RAM there.
err=$(dmesg | grep -m1 'conflicts with' || true)
if [ -z "$err" ]; then
	echo "RESULT: cannot judge: no System RAM at $addr_hex, but no conflict logged"
	exit 2
fi
case $err in *hmm_dmirror*) ;; *)
	echo "RESULT: cannot judge: a conflict, but not with test_hmm's memory: $err"
	exit 2 ;;
esac
if [ $placement != dimm ]; then
	echo "RESULT: cannot judge: a conflict, but test_hmm's memory is not inside the DIMM's range: $err"
	exit 2
fi
echo "RESULT: conflict reproduced: QEMU plugged the DIMM, the guest has no System RAM at $addr_hex: $err"
exit 1
