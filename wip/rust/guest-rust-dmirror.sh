#!/bin/sh
# Guest script for the Rust side (samples/rust/rust_dmirror): the same ABI
# checks against the C test_hmm device and the Rust sample, pfn window check,
# unload with pages on the device.  Rust KUnit/doctests ran at boot.
. /smdm/lib.sh
echo "kernel: $(uname -r)"
rc=0
t=/tests/hmm-dmirror-abi

echo "== C test_hmm"
if modprobe test_hmm; then
	$t /dev/hmm_dmirror0 || rc=1
	rmmod test_hmm || { echo "rmmod test_hmm failed"; rc=1; }
else
	echo "modprobe test_hmm failed"; rc=1
fi

echo "== Rust rust_dmirror"
modprobe rust_dmirror || { echo "modprobe rust_dmirror failed"; exit 1; }
sed 's/^/device_private: /' /proc/device_private
win=$(sed -n '1s/^\([0-9a-f]*\)-\([0-9a-f]*\) : .*/\1 \2/p' /proc/device_private)
reg=$(sed -n 's/^ *\([0-9a-f]*\)-\([0-9a-f]*\) : rust_dmirror$/\1 \2/p' /proc/device_private)
echo "window: $win region: $reg"
set -- $win $reg
if [ $# = 4 ] && [ $((0x$3)) -ge $((0x$1)) ] && [ $((0x$4)) -le $((0x$2)) ]; then
	echo "ok rust_dmirror region inside the device-private pfn window"
else
	echo "not ok rust_dmirror region not inside the window"; rc=1
fi
grep -q rust_dmirror /proc/iomem && { echo "not ok rust_dmirror in /proc/iomem"; rc=1; }
$t /dev/rust_dmirror || rc=1

echo "== Rust unload with pages on the device"
$t /dev/rust_dmirror unload "rmmod rust_dmirror" || rc=1
grep -q rust_dmirror /proc/device_private && { echo "not ok region left after unload"; rc=1; }
echo "== reload"
modprobe rust_dmirror && $t /dev/rust_dmirror && rmmod rust_dmirror || rc=1
echo "== done rc=$rc"
exit $rc
