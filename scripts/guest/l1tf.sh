#!/bin/sh
# L1TF and migration A/D bits: what the kernel says about L1TF on this CPU,
# its address sizes, and whether page migration keeps the PTE young bit
# (/tests/l1tf/mig_ad, scripts/guest-progs/mig_ad.c; needs two NUMA nodes,
# numa=fake=2).  Lines for the host start with '@@L1TF '.
#
#   scripts/l1tf-check        (host)
PROG=/tests/l1tf/mig_ad
VULN=/sys/devices/system/cpu/vulnerabilities/l1tf
echo "== l1tf: migration A/D bits"
echo "kernel: $(uname -r)"
echo "cmdline: $(cat /proc/cmdline)"
if grep -qw la57 /proc/cpuinfo; then echo "paging: 5-level (la57)"; else echo "paging: 4-level"; fi
sed -n '/^model name/{s/^/# cpuinfo: /p;q}' /proc/cpuinfo
sed -n '/^address sizes/{s/^/@@L1TF cpuinfo: /p;q}' /proc/cpuinfo
if [ -r $VULN ]; then
	echo "@@L1TF l1tf=$(cat $VULN)"
else
	echo "@@L1TF l1tf=(no $VULN)"
fi
# The kernel logs L1TF only when RAM reaches above MAX_PA/2.
dmesg | grep -i 'l1tf' | grep -iv 'command line' | sed 's/^\[[ 0-9.]*\] //; s/^/@@L1TF dmesg: /'
echo "# nodes: $(cd /sys/devices/system/node && echo node*)"
[ -x $PROG ] || { echo "Bail out! no $PROG (run through scripts/l1tf-check)"; exit 1; }
rc=0
$PROG || rc=$?
echo "@@L1TF mig_ad rc=$rc"
exit $rc
