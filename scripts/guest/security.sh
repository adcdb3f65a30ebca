#!/bin/sh
# Security: the pfns of the device private window (live device pages of
# test_hmm) are not reachable from userspace.  KTAP output from
# /tests/robust2/sec_probe (11 cases, see scripts/guest-progs/sec_probe.c):
# pagemap as root and as an unprivileged user, /proc/kpageflags,
# /proc/kpagecount, /proc/kpagecgroup at window pfns, unprivileged open of
# kpageflags, /dev/mem read/mmap at a window address, memory/probe at the
# window start and at a live device range, the device data afterwards.
# Interfaces the kernel config lacks are KTAP skips, with the reason.
#
#   scripts/robust security        (host)
#   scripts/test: the series guest series-security (4-level)
. /smdm/lib.sh
# scripts/robust puts it in /tests/robust2, scripts/test (scripts/guest-progs/build) in /tests/guest-progs.
PROG=/tests/robust2/sec_probe
[ -x $PROG ] || PROG=/tests/guest-progs/sec_probe
echo "== robust2: security"
echo "kernel: $(uname -r)"
if grep -qw la57 /proc/cpuinfo; then echo "paging: 5-level (la57)"; else echo "paging: 4-level"; fi
[ -x $PROG ] || { echo "Bail out! no $PROG (run through scripts/robust)"; exit 1; }
for f in /dev/mem /proc/kpageflags /proc/kpagecount /proc/kpagecgroup /proc/self/pagemap \
	/sys/devices/system/memory/probe; do
	[ -e $f ] && echo "# interface: $f present" || echo "# interface: $f ABSENT"
done
dmesg_lines0=$(dmesg | wc -l)
modprobe test_hmm || { echo "Bail out! modprobe test_hmm failed"; exit 1; }
[ -c /dev/hmm_dmirror0 ] || sleep 1
rc=0
$PROG -d /dev/hmm_dmirror0 -m 8 || rc=1
sed 's/^/# device_private: /' /sys/kernel/debug/device_private

echo "== robust2: security cleanup"
_t_n=0
ktap_plan 3
if rmmod test_hmm; then t_ok "rmmod test_hmm"; else t_fail "rmmod test_hmm"; fi
left=$(sed 1d /sys/kernel/debug/device_private | wc -l)
[ "$left" = 0 ] && t_ok "no device_private range left after unload" || t_fail "$left device_private ranges left"
if dmesg | tail -n +"$((dmesg_lines0 + 1))" |
	grep -E 'BUG:|WARNING:|Oops|general protection|UBSAN|Bad page' >/tmp/sec.bad; then
	sed 's/^/# dmesg: /' /tmp/sec.bad | head
	t_fail "kernel log clean"
else
	t_ok "kernel log clean"
fi
dmesg | tail -n +"$((dmesg_lines0 + 1))" | grep -iE 'probe|memory|hmm' | sed 's/^/# dmesg: /' | tail -8
t_totals || rc=1
exit $rc
