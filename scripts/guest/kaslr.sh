#!/bin/sh
# KASLR layout of one boot: loads /tests/robust2/sec_kaslr_layout.ko (built
# by scripts/robust against the booted kernel's build), which prints
# page_offset_base, vmalloc_base, vmemmap_base, the vmemmap range of the
# device private pfn window, the fixed regions after it, and the parts of
# that range mapped in the kernel page tables.  Three snapshots: before any
# device memory exists, with test_hmm's memory registered, after rmmod.
# The host (scripts/robust kaslr) checks the numbers; this script only
# fails when it cannot collect them.
MOD=/tests/robust2/sec_kaslr_layout.ko
echo "== robust2: kaslr layout"
echo "kernel: $(uname -r)"
if grep -qw la57 /proc/cpuinfo; then echo "paging: 5-level (la57)"; else echo "paging: 4-level"; fi
grep -q nokaslr /proc/cmdline && echo "kaslr: off" || echo "kaslr: on"
dmesg | grep -m1 'device private memory: pfn window' | sed 's/^/# dmesg: /'
[ -f $MOD ] || { echo "Bail out! no $MOD"; exit 1; }
snap() { # tag
	insmod $MOD tag="$1" || return 1
	rmmod sec_kaslr_layout || return 1
	sed "s/^/@@DP $1 /" /sys/kernel/debug/device_private
}
rc=0
snap before || rc=1
modprobe test_hmm || rc=1
# Registers a chunk on each private device (256 MiB each) and checks data.
/tests/hmm/hmm_hold -d /dev/hmm_dmirror0 -m 8 -1 | sed 's/^/# /' || rc=1
/tests/hmm/hmm_hold -d /dev/hmm_dmirror1 -m 8 -1 | sed 's/^/# /' || rc=1
snap registered || rc=1
rmmod test_hmm || rc=1
snap unloaded || rc=1
dmesg | grep 'sec_kaslr_layout' | sed 's/^\[[ 0-9.]*\] //; s/^/@@KL /'
exit $rc
