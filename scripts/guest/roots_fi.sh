#!/bin/sh
# The first registration of device private memory allocates the window's
# section roots (mm/sparse.c, devpriv_section_roots() in sparse_index_init()).
# Make every allocation under sparse_index_init() fail for that first
# registration (test_hmm's module load): the load must fail with -ENOMEM
# and leave nothing behind, and the next registration must work.  Prints
# KTAP; every check can fail.
#
# Needs a kernel with fault injection (scripts/build series --debug or
# --debug-rust), booted with kunit.enable=0 so that no KUnit suite registers
# window memory first, and scripts/guest-progs/fi_hmm built for it
# (scripts/guest/faultinject.sh build BUILD_DIR):
#   scripts/vm --kernel DIR --append kunit.enable=0 --run scripts/guest/roots_fi.sh
. /smdm/lib.sh
D=/sys/kernel/debug
KL=$D/kmemleak
FI=/tests/guest-progs/fi_hmm
SPLAT='WARNING:|BUG:|Oops|general protection fault|KASAN:|Kernel panic|'\
'circular locking|inconsistent lock state|suspicious RCU usage|bad page state'
NTESTS=6
_t_n=0 _t_pass=0 _t_fail=0 _t_skip=0

echo "== roots_fi: the window's section roots fail to allocate at the first registration"
ktap_plan $NTESTS
skip_all() { t_skip_rest $NTESTS "$1"; }
ko=$(find /lib/modules -name test_hmm.ko | head -1)
[ -d $D/failslab ] && [ -d $D/fail_page_alloc ] || skip_all "no failslab/fail_page_alloc in debugfs"
[ -e $D/failslab/require-start ] || skip_all "no stack-trace filter (CONFIG_FAULT_INJECTION_STACKTRACE_FILTER)"
[ -x $FI ] || skip_all "no $FI (run: scripts/guest/faultinject.sh build <kernel> on the host)"
[ -n "$ko" ] || skip_all "no test_hmm.ko"
[ -r /sys/kernel/debug/device_private ] || skip_all "no /sys/kernel/debug/device_private (kernel without the series)"
grep -qw 'kunit.enable=0' /proc/cmdline || skip_all "boot with kunit.enable=0: KUnit registers window memory at boot"
if [ "$(grep -vc 'Device private memory' /sys/kernel/debug/device_private)" != 0 ]; then
	skip_all "device private memory was registered before this script"
fi

fi_setup Y
[ -w $KL ] && { echo scan >$KL; echo clear >$KL; }
dmesg -c >/dev/null

# 1. The first registration, every allocation under sparse_index_init()
# failing (the load runs with make-it-fail set).
$FI filter sparse_index_init | sed 's/^/# /'
for a in failslab fail_page_alloc; do echo 100 >$D/$a/probability; done
$FI load "$ko" >/tmp/roots.out 2>&1
for a in failslab fail_page_alloc; do echo 0 >$D/$a/probability; done
$FI filter none >/dev/null
dmesg -c >/tmp/roots.dmesg
sed 's/^/# /' /tmp/roots.out
if grep -q '^result load=-12 ' /tmp/roots.out; then
	t_ok "first registration fails with -ENOMEM"
else
	t_fail "first registration: $(cat /tmp/roots.out)"
fi
# The first injected failure's stack: the roots, from kvcalloc().
first=$(awk '/FAULT_INJECTION: forcing a failure/ {n++} n == 1' /tmp/roots.dmesg)
if echo "$first" | grep -q 'sparse_index_init' && echo "$first" | grep -q '__kvmalloc_node'; then
	t_ok "the allocation that failed first is the window's roots (kvcalloc in sparse_index_init)"
else
	echo "$first" | head -30 | sed 's/^/# /'
	t_fail "the first injected failure is not the roots allocation"
fi

# 2. Nothing left behind.
left=$(grep -c hmm_dmirror /sys/kernel/debug/device_private)
if [ "$left" = 0 ] && ! grep -q hmm_dmirror /proc/iomem && ! grep -q '^test_hmm ' /proc/modules; then
	t_ok "nothing left behind: no hmm_dmirror range in /sys/kernel/debug/device_private or /proc/iomem, no module"
else
	t_fail "left behind: $left ranges in /sys/kernel/debug/device_private; $(grep hmm_dmirror /proc/iomem | head -2)"
fi

# 3. The next registration allocates the roots and works.
if modprobe test_hmm && $FI check >/tmp/roots.check 2>&1; then
	sed -n 's/^# /# check: /p' /tmp/roots.check
	t_ok "next registration works: THP and small migration in the window, data intact"
else
	cat /tmp/roots.check
	t_fail "next registration"
fi
rmmod test_hmm 2>/dev/null

# 4. No report, no leak.
dmesg >>/tmp/roots.dmesg
if grep -E "$SPLAT" /tmp/roots.dmesg; then
	t_fail "kernel reports (above)"
else
	t_ok "no WARN/BUG/lockdep/KASAN report"
fi
if [ -w $KL ]; then
	echo scan >$KL; sleep 1; echo scan >$KL
	n=$(grep -c 'unreferenced object' $KL)
	if [ "$n" = 0 ]; then t_ok "kmemleak: no leak"; else cat $KL | head -40; t_fail "kmemleak: $n suspects"; fi
else
	t_skip "no kmemleak"
fi
t_totals
