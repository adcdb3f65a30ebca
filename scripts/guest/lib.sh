# shellcheck shell=sh
# Helpers for guest scripts (busybox sh).  Source with: . /smdm/lib.sh

# Ask the host (scripts/vm) to act through QMP; prints the answer, returns 0
# when the host said 'ok'.  The request goes out on the console, the answer
# comes back on the second serial port (x86_64) or a virtio console (arm64).
_host_con=/dev/ttyS0 _host_ctl=/dev/ttyS1
if [ -c /dev/ttyAMA0 ]; then
	_host_con=/dev/ttyAMA0 _host_ctl=/dev/hvc0
fi
exec 3<$_host_ctl
stty -F $_host_ctl -echo raw 2>/dev/null
_host_seq=0
host() {
	_host_seq=$((_host_seq + 1))
	echo "@@HOST $_host_seq $*" >$_host_con
	while read -r _seq _st _rest <&3; do
		[ "$_seq" = "$_host_seq" ] || continue
		echo "$_rest"
		[ "$_st" = ok ]
		return
	done
	echo "no answer from host"
	return 1
}

# The '== guest facts' section a suite log starts with (scripts/summarize
# and scripts/config/expected-suites.txt read its paging line).
guest_facts() {
	echo "== guest facts"
	echo "kernel: $(uname -r)"
	if grep -qw la57 /proc/cpuinfo; then echo "paging: 5-level (la57)"; else echo "paging: 4-level"; fi
	grep -m1 'address sizes' /proc/cpuinfo
	if grep -q nokaslr /proc/cmdline; then echo "kaslr: off"; else echo "kaslr: on"; fi
}

# Physical ranges of a resource name in /proc/iomem: "start end" per line.
iomem_ranges() {
	sed -n "s/^ *\([0-9a-f]*\)-\([0-9a-f]*\) : $1\$/\1 \2/p" /proc/iomem
}

memblock_size() {
	printf '%d\n' "0x$(cat /sys/devices/system/memory/block_size_bytes)"
}

# Online every offline memory block as movable; prints how many it onlined.
online_all_movable() {
	_n=0
	for _b in /sys/devices/system/memory/memory*; do
		[ "$(cat "$_b/state")" = offline ] || continue
		echo online_movable >"$_b/state" && _n=$((_n + 1))
	done
	echo $_n
}

mem_total_kb() { sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo; }

# KTAP-ish reporting for the shell tests.
_t_n=0 _t_pass=0 _t_fail=0 _t_skip=0
ktap_plan() { echo "TAP version 13"; echo "1..$1"; }
t_ok() { _t_n=$((_t_n + 1)); _t_pass=$((_t_pass + 1)); echo "ok $_t_n $*"; }
t_fail() { _t_n=$((_t_n + 1)); _t_fail=$((_t_fail + 1)); echo "not ok $_t_n $*"; }
t_skip() { _t_n=$((_t_n + 1)); _t_skip=$((_t_skip + 1)); echo "ok $_t_n # SKIP $*"; }
t_totals() {
	echo "# Totals: pass:$_t_pass fail:$_t_fail xfail:0 xpass:0 skip:$_t_skip error:0"
	[ $_t_fail = 0 ]
}

# failslab and fail_page_alloc armed but not firing (probability 0): every
# GFP mode and order, counted through 'times', each failure reported with
# its stack.  $1: Y to fail only tasks that ask (make-it-fail, fail-nth), N
# for any task (then a stack-trace filter narrows it down); $2: interval.
fi_setup() {
	for _a in failslab fail_page_alloc; do
		echo 0 >/sys/kernel/debug/$_a/probability
		echo "${2:-1}" >/sys/kernel/debug/$_a/interval
		echo 1000000 >/sys/kernel/debug/$_a/times
		echo 0 >/sys/kernel/debug/$_a/space
		echo 2 >/sys/kernel/debug/$_a/verbose
		echo "$1" >/sys/kernel/debug/$_a/task-filter
		echo N >/sys/kernel/debug/$_a/ignore-gfp-wait
	done
	echo N >/sys/kernel/debug/failslab/cache-filter
	echo N >/sys/kernel/debug/fail_page_alloc/ignore-gfp-highmem
	echo 0 >/sys/kernel/debug/fail_page_alloc/min-order
}

# Skip what is left of a plan of $1 tests for reason $2, print the totals
# and exit 0 (kselftest: a skip is not a failure).
t_skip_rest() {
	echo "# $2"
	while [ $_t_n -lt "$1" ]; do t_skip "$2"; done
	t_totals
	exit 0
}
