#!/bin/sh
# kdump with device-private pages in use (issue 12 part 3).  Run through
# scripts/robust kdump, which adds to the initramfs /usr/sbin/kexec,
# /usr/sbin/makedumpfile (with their libraries) and /kdump/{bzImage,
# capture.cpio.gz} (the capture initramfs: busybox, this script as /run.sh),
# boots with crashkernel= and gives four raw disks: /dev/vda to vdd.
#
# First kernel (no /proc/vmcore): load test_hmm, keep KDUMP_MIB MiB (default
# 16) on the device with selftests/hmm's hmm_hold, kexec -p the capture
# kernel, sysrq c.
# Capture kernel (/proc/vmcore exists): makedumpfile -F -d 31 to /dev/vda,
# -d 1 to /dev/vdb, -d 23 (31 without the user-page filter) to /dev/vdc
# (flattened: the host turns them into dump files with makedumpfile -R), the
# first 64 KiB of /proc/vmcore (ELF and program headers) to /dev/vdd.  KTAP
# lines; the host checks the dumps with crash.
MIB=16
for a in "$@"; do case $a in KDUMP_MIB=*) MIB=${a#KDUMP_MIB=} ;; esac; done
. /smdm/lib.sh

if [ ! -e /proc/vmcore ]; then
	echo "== kdump: first kernel $(uname -r)"
	ktap_plan 3
	ck=$(grep 'Crash kernel' /proc/iomem)
	[ -n "$ck" ] && t_ok "crashkernel reserved:$ck" || t_fail "no Crash kernel range in /proc/iomem"
	if modprobe test_hmm; then
		[ -c /dev/hmm_dmirror0 ] || sleep 1
		/tests/hmm/hmm_hold -m "$MIB" -r /tmp/ready -s /tmp/stop &
		hold=$!
		i=0
		while [ ! -e /tmp/ready ] && kill -0 $hold 2>/dev/null && [ $i -lt 300 ]; do
			sleep 1
			i=$((i + 1))
		done
	fi
	if [ -e /tmp/ready ] && kill -0 $hold 2>/dev/null; then
		t_ok "test_hmm loaded, hmm_hold (pid $hold) keeps $MIB MiB migrated to /dev/hmm_dmirror0"
	else
		t_fail "test_hmm/hmm_hold: no device pages held"
	fi
	[ -r /sys/kernel/debug/device_private ] && sed 's/^/# device_private: /' /sys/kernel/debug/device_private
	grep -iE 'hmm|device' /proc/iomem | sed 's/^/# iomem: /'
	grep -E '^(MemTotal|MemFree):' /proc/meminfo | sed 's/^/# /'
	kexec -p /kdump/bzImage --initrd=/kdump/capture.cpio.gz \
		--append="console=ttyS0 rdinit=/init nr_cpus=1 reset_devices kunit.enable=0 panic=-1 loglevel=7 no_hash_pointers" \
		>/tmp/kexec.out 2>&1
	krc=$?
	sed 's/^/# kexec: /' /tmp/kexec.out
	if [ $krc = 0 ] && [ "$(cat /sys/kernel/kexec_crash_loaded)" = 1 ]; then
		t_ok "kexec -p loaded the capture kernel"
	else
		t_fail "kexec -p (rc=$krc, kexec_crash_loaded=$(cat /sys/kernel/kexec_crash_loaded))"
	fi
	echo "# kdump: sysrq c now"
	sync
	echo c >/proc/sysrq-trigger
	t_fail "sysrq c returned"
	exit 1
fi

echo "== kdump: capture kernel $(uname -r)"
ktap_plan 5
echo "# vmcore: $(stat -c %s /proc/vmcore) bytes; $(grep MemTotal /proc/meminfo)"
rc=0
dump() { # LEVEL DISK
	makedumpfile --message-level 22 -F -d "$1" /proc/vmcore >"$2" 2>/tmp/md.err
	_rc=$?
	tr '\r' '\n' </tmp/md.err | grep -v '^ *$' | sed "s/^/# makedumpfile -d $1: /"
	if [ $_rc = 0 ]; then
		t_ok "makedumpfile -d $1 -> $2"
	else
		t_fail "makedumpfile -d $1 -> $2 (rc=$_rc)"
		rc=1
	fi
}
dump 31 /dev/vda
dump 1 /dev/vdb
dump 23 /dev/vdc
if dd if=/proc/vmcore of=/dev/vdd bs=4096 count=16 2>/dev/null; then
	t_ok "vmcore headers -> /dev/vdd"
else
	t_fail "vmcore headers -> /dev/vdd"
	rc=1
fi
sync
# The data must have reached the disks before poweroff.
if blockdev --flushbufs /dev/vda && blockdev --flushbufs /dev/vdb &&
	blockdev --flushbufs /dev/vdc && blockdev --flushbufs /dev/vdd; then
	t_ok "disks flushed"
else
	t_fail "disks flushed"
	rc=1
fi
exit $rc
