#!/bin/sh
# rmmod of the Rust sample rust_dmirror while a process has pages on its
# device, with fault injection on every allocation made with the module's
# code on the stack (DevPagemap's teardown is generic, so it is compiled into
# the module).  The teardown migrates the pages back and must neither hang
# nor lose data.  Prints KTAP; every check can fail.
#
# Host side, once per build (the guest has no compiler), with the other
# fault-injection helpers:
#   scripts/guest/faultinject.sh build series-debug-rust|BUILD_DIR
# Guest side:
#   scripts/vm --kernel DIR --run scripts/guest/rust_teardown.sh [RT_PAGES=N RT_ROUNDS=N]
. /smdm/lib.sh
for a in "$@"; do case $a in *=*) export "$a" ;; esac; done
RT_PAGES=${RT_PAGES:-512}
RT_ROUNDS=${RT_ROUNDS:-3}
D=/sys/kernel/debug
HOLD=/tests/guest-progs/hold_dev
SPLAT='WARNING:|BUG:|Oops|Kernel panic|circular locking|inconsistent lock state|'\
'INFO: task .* blocked|RCU detected stall|bad page state|Bad page|unreferenced object'

echo "== rust_teardown: rmmod rust_dmirror with pages on the device, under fault injection"
_t_n=0 _t_pass=0 _t_fail=0 _t_skip=0
ktap_plan $((RT_ROUNDS * 4 + 1))
skip_all() { t_skip_rest $((RT_ROUNDS * 4 + 1)) "$1"; }
[ -d $D/failslab ] && [ -d $D/fail_page_alloc ] ||
	skip_all "no failslab/fail_page_alloc in debugfs (CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC, CONFIG_FAULT_INJECTION_DEBUG_FS)"
[ -e $D/failslab/require-start ] || skip_all "no stack-trace filter (CONFIG_FAULT_INJECTION_STACKTRACE_FILTER)"
[ -x $HOLD ] || skip_all "no $HOLD (run: scripts/guest/faultinject.sh build <kernel> on the host)"
[ -n "$(find /lib/modules -name rust_dmirror.ko)" ] || skip_all "no rust_dmirror.ko"

# Every allocation of any task with the module's code on the stack fails.
fi_setup N
dmesg -c >/dev/null
: >/tmp/rt-dmesg

round=1
while [ $round -le "$RT_ROUNDS" ]; do
	# A round that cannot start fails (the plan's tests left are not run).
	modprobe rust_dmirror || { t_fail "round $round: modprobe rust_dmirror"; break; }
	# The module's text: from its lowest to its highest symbol, plus a page.
	lo=$(grep '\[rust_dmirror\]$' /proc/kallsyms | cut -d' ' -f1 | sort | head -1)
	hi=$(grep '\[rust_dmirror\]$' /proc/kallsyms | cut -d' ' -f1 | sort | tail -1)
	rm -f /tmp/ready /tmp/stop
	$HOLD /dev/rust_dmirror "$RT_PAGES" /tmp/ready /tmp/stop >/tmp/hold.out 2>&1 &
	pid=$!
	n=0
	while [ ! -e /tmp/ready ] && [ $n -lt 600 ] && kill -0 $pid 2>/dev/null; do
		sleep 0.1
		n=$((n + 1))
	done
	if [ ! -e /tmp/ready ]; then
		t_fail "round $round: $RT_PAGES pages migrated to rust_dmirror ($(cat /tmp/hold.out))"
	else
		t_ok "round $round: $RT_PAGES pages migrated to rust_dmirror"
	fi
	# Shell arithmetic is signed 64-bit: add the page to the low half.
	end=$(printf '%s%08x' "${hi%????????}" "$((0x${hi#????????} + 4096))")
	filter=ok
	for a in failslab fail_page_alloc; do
		echo "0x$lo" >$D/$a/require-start && echo "0x$end" >$D/$a/require-end || filter=bad
		[ "$(cat $D/$a/require-start)" != 0 ] && [ "$(cat $D/$a/require-end)" != 0 ] || filter=bad
	done
	if [ $filter != ok ]; then
		t_fail "round $round: stack filter [0x$lo, 0x$end) not accepted"
		break
	fi
	for a in failslab fail_page_alloc; do echo 100 >$D/$a/probability; done
	t0=$(date +%s)
	rmmod rust_dmirror
	rc=$?
	t1=$(date +%s)
	for a in failslab fail_page_alloc; do
		echo 0 >$D/$a/probability
		echo 0 >$D/$a/require-start
		echo 0 >$D/$a/require-end
	done
	dmesg -c >/tmp/round.dmesg
	cat /tmp/round.dmesg >>/tmp/rt-dmesg
	injected=$(grep -c 'FAULT_INJECTION: forcing a failure' /tmp/round.dmesg)
	if [ $rc = 0 ]; then
		t_ok "round $round: rmmod with the pages on the device: $((t1 - t0)) s, $injected allocations failed"
	else
		t_fail "round $round: rmmod rc $rc ($injected allocations failed)"
	fi
	touch /tmp/stop
	wait $pid
	hrc=$?
	if [ $hrc = 0 ]; then
		t_ok "round $round: $(sed -n 's/^result //p' /tmp/hold.out)"
	else
		t_fail "round $round: data after teardown: $(cat /tmp/hold.out)"
	fi
	if grep -q rust_dmirror /sys/kernel/debug/device_private; then
		t_fail "round $round: rust_dmirror still in /sys/kernel/debug/device_private"
	else
		t_ok "round $round: region released"
	fi
	round=$((round + 1))
done
if grep -E "$SPLAT" /tmp/rt-dmesg; then
	t_fail "kernel reports during the rounds (above)"
else
	t_ok "no WARN/BUG/lockdep/hung-task report during the rounds"
fi
t_totals
