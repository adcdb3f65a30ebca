#!/bin/sh
# Guest checks for the core series (run via scripts/vm --run).
. /smdm/lib.sh
echo "== guest facts"
uname -r
if grep -qw la57 /proc/cpuinfo; then echo "paging: 5-level (la57)"; start=0x10000000000; else echo "paging: 4-level"; start=0x400000000; fi
grep -m1 'address sizes' /proc/cpuinfo
grep -q nokaslr /proc/cmdline && echo "kaslr: off" || echo "kaslr: on"
dmesg | grep -i "device private\|pfn window"
rc=0
modprobe test_hmm "$@" || { echo "modprobe test_hmm failed"; rc=1; }
echo "== upstream: mm/hmm-tests"
/tests/hmm-tests > /tmp/hmm.out 2>&1 || rc=1
grep -E "^(not ok|# Totals|# FAIL)" /tmp/hmm.out
echo "== placement"
dmesg | grep "added new" | head -4
n=$(dmesg | grep -c "added new")
echo "chunks added: $n"
below=0
for f in $(dmesg | sed -n 's/.*added new.*PFNs \[\(0x[0-9a-f]*\) .*/\1/p'); do
	[ $((f)) -ge $((start)) ] || below=$((below + 1))
done
echo "chunks below DEVMEM_PFN_START $start: $below"
echo "iomem hmm_dmirror lines: $(grep -c hmm_dmirror /proc/iomem)"
grep hmm_dmirror /proc/iomem | head -3
if [ -r /proc/device_private ]; then
	echo "device_private lines: $(wc -l < /proc/device_private)"
	head -4 /proc/device_private
	ls -l /proc/device_private
else
	echo "no /proc/device_private"
fi
echo "== RAM probe into the window must fail"
if [ -w /sys/devices/system/memory/probe ]; then
	w=$(printf '0x%x' $(( start << 12 )))
	if echo $w > /sys/devices/system/memory/probe 2>/tmp/probe.err; then echo "probe $w: UNEXPECTED success"; rc=1; else echo "probe $w: failed as expected: $(cat /tmp/probe.err)"; fi
fi
echo "== rmmod"
rmmod test_hmm && echo "rmmod ok" || { echo "rmmod failed"; rc=1; }
[ -r /proc/device_private ] && { echo "device_private after rmmod:"; cat /proc/device_private; }
grep hmm_dmirror /proc/iomem
dmesg | grep -iE "warn|bug|oops" | grep -v "^$" | head
exit $rc
