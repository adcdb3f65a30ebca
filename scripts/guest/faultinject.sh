#!/bin/sh
# Fault injection (failslab, fail_page_alloc) while test_hmm registers device
# memory: request_device_private_region() and memremap_pages() in
# dmirror_allocate_chunk().  Prints KTAP; every check can fail.
#
# Host side, once per build (the guest has no compiler):
#   scripts/guest/faultinject.sh build series|series-debug|BUILD_DIR
#	compiles scripts/guest-progs/fi_hmm.c with gcc -static into
#	BUILD_DIR/tests/guest-progs/ (the guest sees it in /tests/guest-progs).
# Guest side:
#   scripts/vm --kernel series --debug --run scripts/guest/faultinject.sh [KEY=VALUE...]
#	FI_SWEEP_FIRST=1 FI_SWEEP_MAX=300   fail-nth range of each sweep (they stop by themselves
#	                   when a migration passes fewer injection points)
#	FI_BATCH=10        fail-nth values per module load
#	FI_RANDOM_LOADS=6  module loads in the random (probability) phase,
#	FI_RANDOM_ROUNDS=4 each with this many registrations
#	FI_PROB=30 FI_INTERVAL=1   probability (%) and interval
#	FI_RANDOM_THP=0    1: every second random load migrates THPs.  Two
#	                   failed registrations in one THP migration reach
#	                   BACKING_PAGE(NULL) in upstream test_hmm's fallback
#	                   loop (dmirror_migrate_alloc_and_copy): an oops.
#	FI_LOAD_ITERS=8    module loads with injection in finit_module()
#	FI_HMM_MIGRATE=1   run selftests/hmm/hmm_migrate at the end
#	FI_BUDGET=2400     seconds; a sweep stops past this, and fails: a sweep
#	                   passes only when it reached the end of the injection
#	                   points (so does one that reaches FI_SWEEP_MAX first)
#	FI_MODPARAMS=      test_hmm parameters, e.g. legacy_placement=1 (the
#	                   placement before the series, for an A/B); the window
#	                   check at the end then fails by design
#	FI_PHASES=small,thp,random,load   the phases to run (the others
#	                   print a KTAP skip); the checks after them always run
#
# The phases:
#  1. fail-nth sweep over every injection point that has
#     dmirror_allocate_chunk() on its stack (stack-trace filter), with a
#     one-page migration (small chunk), module reloaded every FI_BATCH points;
#  2. the same with a THP migration (a chunk for 2 MiB folios);
#  3. random: task filter on the helper, probability FI_PROB, several chunk
#     registrations per module load;
#  4. module load with injection (filter: memremap_pages, then
#     __request_device_private_region): the chunks test_hmm registers at init;
# then: no WARN/BUG/oops/KASAN/lockdep report in dmesg, no test_hmm range in
# /sys/kernel/debug/device_private after any unload, kmemleak clean, and the window works
# (placement and data) with injection off.

if [ "${1:-}" = build ]; then
	# Host: build the helper for a kernel build directory.
	[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
	set -eu
	here=$(cd "$(dirname "$0")/../.." && pwd)
	. "$here/scripts/lib.sh"
	case ${2:-} in
	series | base) out=$(build_for "$2") ;;
	series-debug | base-debug) out=$(build_for "${2%-debug}")-debug ;;
	series-debug-rust) out=$(build_for series)-debug-rust ;;
	"") die "usage: faultinject.sh build series|series-debug|series-debug-rust|BUILD_DIR" ;;
	*) out=$2 ;;
	esac
	[ -d "$out/usr/include/linux" ] || die "no kernel headers in $out (run scripts/build)"
	src=$(readlink -f "$out/source")
	mkdir -p "$out/tests/guest-progs"
	# fi_hmm, and hold_dev for scripts/guest/rust_teardown.sh.
	for p in fi_hmm hold_dev; do
		gcc -static -O2 -Wall -I "$src" -isystem "$out/usr/include" \
			-o "$out/tests/guest-progs/$p" "$here/scripts/guest-progs/$p.c"
		log "built $out/tests/guest-progs/$p"
	done
	exit 0
fi

. /smdm/lib.sh
for a in "$@"; do case $a in *=*) export "$a" ;; esac; done
FI_SWEEP_MAX=${FI_SWEEP_MAX:-300}
FI_BATCH=${FI_BATCH:-10}
FI_RANDOM_LOADS=${FI_RANDOM_LOADS:-6}
FI_RANDOM_ROUNDS=${FI_RANDOM_ROUNDS:-4}
FI_PROB=${FI_PROB:-30}
FI_INTERVAL=${FI_INTERVAL:-1}
FI_RANDOM_THP=${FI_RANDOM_THP:-0}
FI_LOAD_ITERS=${FI_LOAD_ITERS:-8}
FI_HMM_MIGRATE=${FI_HMM_MIGRATE:-1}
FI_BUDGET=${FI_BUDGET:-2400}
FI_PHASES=$(echo "${FI_PHASES:-small,thp,random,load}" | tr , " ")
FI_MODPARAMS=${FI_MODPARAMS:-}
FI=/tests/guest-progs/fi_hmm
# The stack-trace filter: test_hmm's chunk registration (the device page
# allocation around it if the compiler inlined it).
CHUNK_FUNCS=dmirror_allocate_chunk,dmirror_devmem_alloc_page
D=/sys/kernel/debug
KL=$D/kmemleak
T0=$(date +%s)
SPLAT='WARNING:|BUG:|Oops|general protection fault|KASAN:|UBSAN:|Kernel panic|kernel BUG|'\
'circular locking|recursive locking|inconsistent lock state|suspicious RCU usage|'\
'lock held when returning|unreferenced object|INFO: task .* blocked|RCU detected stall|'\
'bad page state|Bad page|list_add corruption|list_del corruption'

echo "== faultinject: failslab/fail_page_alloc around device memory registration"
NTESTS=9
ktap_plan $NTESTS

skip_all() { t_skip_rest $NTESTS "$1"; }
ko=$(find /lib/modules -name test_hmm.ko | head -1)
[ -d $D/failslab ] && [ -d $D/fail_page_alloc ] ||
	skip_all "no failslab/fail_page_alloc in debugfs (CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC, CONFIG_FAULT_INJECTION_DEBUG_FS)"
[ -w /proc/self/fail-nth ] || skip_all "no /proc/self/fail-nth"
[ -e $D/failslab/require-start ] || skip_all "no stack-trace filter (CONFIG_FAULT_INJECTION_STACKTRACE_FILTER)"
[ -x $FI ] || skip_all "no $FI (run: scripts/guest/faultinject.sh build <kernel> on the host)"
[ -n "$ko" ] || skip_all "no test_hmm.ko"
grep -q ' memremap_pages$' /proc/kallsyms || skip_all "no kallsyms (CONFIG_KALLSYMS)"
[ -r /sys/kernel/debug/device_private ] || skip_all "no /sys/kernel/debug/device_private (kernel without the series)"

# Only the task that asks (make-it-fail or fail-nth).
fi_setup Y "$FI_INTERVAL"

have_kl=0
if [ -w $KL ]; then
	have_kl=1
	echo scan >$KL 2>/dev/null
	echo "# kmemleak: $(grep -c 'unreferenced object' $KL) suspects before fault injection (cleared)"
	echo clear >$KL
fi

dmesg -c >/dev/null
: >/tmp/fi-dmesg
splats=0
check_dmesg() { # phase: appends the kernel log since the last call to /tmp/fi-dmesg
	dmesg -c >/tmp/fi-dmesg.cur
	cat /tmp/fi-dmesg.cur >>/tmp/fi-dmesg
	_s=$(grep -cE "$SPLAT" /tmp/fi-dmesg.cur)
	if [ "$_s" -gt 0 ]; then
		echo "# $1: $_s kernel reports:"
		grep -E "$SPLAT" /tmp/fi-dmesg.cur | head -5 | sed 's/^/#   /'
		splats=$((splats + _s))
	fi
}

unloads=0 leftovers=0
unload() { # rmmod, then no test_hmm range may be left
	if lsmod | grep -q '^test_hmm '; then
		rmmod test_hmm || { echo "# rmmod test_hmm failed"; leftovers=$((leftovers + 1)); }
	fi
	unloads=$((unloads + 1))
	if grep -q hmm_dmirror /sys/kernel/debug/device_private /proc/iomem; then
		echo "# after unload $unloads: test_hmm ranges left in /sys/kernel/debug/device_private:"
		grep hmm_dmirror /sys/kernel/debug/device_private /proc/iomem | sed 's/^/#   /'
		leftovers=$((leftovers + 1))
	fi
}

over_budget() { [ $(($(date +%s) - T0)) -gt "$FI_BUDGET" ]; }

# 1, 2: fail-nth sweeps.
sweep() { # name thp|small
	_n=${FI_SWEEP_FIRST:-1} _hits=0 _rounds=0 _bad=0 _done=0 _loads=0 _thp=0 _cut=
	while [ $_n -le "$FI_SWEEP_MAX" ]; do
		if over_budget; then
			_cut="stopped by the time budget (FI_BUDGET=$FI_BUDGET s) at fail-nth $_n"
			echo "# $1: $_cut"
			break
		fi
		modprobe test_hmm $FI_MODPARAMS || { echo "# modprobe test_hmm failed"; _bad=$((_bad + 1)); break; }
		_loads=$((_loads + 1))
		$FI filter $CHUNK_FUNCS >/tmp/fi-filter || { cat /tmp/fi-filter; _bad=$((_bad + 1)); }
		if [ $_loads = 1 ]; then
			sed 's/^result /# /' /tmp/fi-filter
			$FI count $2 >/tmp/fi-count 2>&1 || _bad=$((_bad + 1))
			echo "# $1: one registration passes: $(sed -n 's/^result //p' /tmp/fi-count)"
			grep '^# FAIL' /tmp/fi-count
		fi
		_last=$((_n + FI_BATCH - 1))
		$FI sweep $_n $_last $2 >/tmp/fi-out 2>&1 || _bad=$((_bad + 1))
		grep -E '^# (FAIL|nth|ioctl)' /tmp/fi-out
		_res=$(grep '^result' /tmp/fi-out)
		unload
		check_dmesg "$1 fail-nth $_n-$_last"
		[ -n "$_res" ] || { echo "# no result from fi_hmm"; _bad=$((_bad + 1)); break; }
		eval "$(echo "$_res" | sed 's/^result //; s/\([a-z_]*\)=/r_\1=/g')"
		_hits=$((_hits + r_hits)) _rounds=$((_rounds + r_rounds)) _thp=$((_thp + r_thp_backed))
		if [ "$r_exhausted" = 1 ]; then _done=1; break; fi
		_n=$r_next
	done
	echo "# $1: $_rounds rounds, $_hits injections hit, complete=$_done, $_loads module loads, $_thp rounds THP-backed"
	total_hits=$((total_hits + _hits))
	if [ "$2" = thp ] && [ $_thp = 0 ]; then
		echo "# $1: the source was never a THP: the sweep tested small chunks only"
		_bad=$((_bad + 1))
	fi
	# Only a sweep that reached the end of the injection points proves
	# anything about all of them.
	if [ $_done = 0 ] && [ $_bad = 0 ]; then
		t_fail "fail-nth sweep, $1 chunk: incomplete, ${_cut:-the injection points did not run out by fail-nth $FI_SWEEP_MAX (FI_SWEEP_MAX)}; $_hits injections hit"
	elif [ $_bad = 0 ] && [ $_hits -gt 0 ]; then
		t_ok "fail-nth sweep, $1 chunk: each of $_hits injection points in dmirror_allocate_chunk() failed once, unwound, and the next registration worked"
	else
		t_fail "fail-nth sweep, $1 chunk: $_bad failed batches, $_hits injections hit"
	fi
}
total_hits=0
phase() { case " $FI_PHASES " in *" $1 "*) return 0 ;; esac; t_skip "$2 (not in FI_PHASES)"; return 1; }
phase small "fail-nth sweep, small chunk" && sweep small small
phase thp "fail-nth sweep, THP chunk" && sweep THP thp

# 3: random, task filter, probability.
random_phase() {
for a in failslab fail_page_alloc; do echo "$FI_PROB" >$D/$a/probability; done
_bad=0 _hits=0 _inj=0 i=0
while [ $i -lt "$FI_RANDOM_LOADS" ]; do
	i=$((i + 1))
	modprobe test_hmm $FI_MODPARAMS || { _bad=$((_bad + 1)); break; }
	$FI filter $CHUNK_FUNCS >/tmp/fi-filter || { cat /tmp/fi-filter; _bad=$((_bad + 1)); }
	_k=small
	[ "$FI_RANDOM_THP" = 1 ] && [ $((i % 2)) = 0 ] && _k=thp
	$FI random "$FI_RANDOM_ROUNDS" $_k >/tmp/fi-out 2>&1 || _bad=$((_bad + 1))
	grep -E '^# (FAIL|random|ioctl)' /tmp/fi-out
	_res=$(grep '^result' /tmp/fi-out)
	unload
	check_dmesg "random load $i ($_k)"
	[ -n "$_res" ] || { _bad=$((_bad + 1)); continue; }
	eval "$(echo "$_res" | sed 's/^result //; s/\([a-z_]*\)=/r_\1=/g')"
	_hits=$((_hits + r_hits)) _inj=$((_inj + r_injections))
done
for a in failslab fail_page_alloc; do echo 0 >$D/$a/probability; done
echo "# random: $FI_RANDOM_LOADS loads x $FI_RANDOM_ROUNDS registrations, probability $FI_PROB%, interval $FI_INTERVAL: $_hits rounds hit, $_inj injections"
total_hits=$((total_hits + _inj))
if [ $_bad = 0 ] && [ $_hits -gt 0 ]; then
	t_ok "random injection (probability $FI_PROB%) into chunk registration: $_inj injections, every round unwound and recovered"
else
	t_fail "random injection into chunk registration: $_bad failed loads, $_hits rounds hit"
fi
}
phase random "random injection into chunk registration" && random_phase

# 4: injection while the module registers its chunks at init.
load_phase() {
for a in failslab fail_page_alloc; do echo "$FI_PROB" >$D/$a/probability; done
_bad=0 _fails=0 _ok=0 _inj=0 i=0
rfunc=__request_device_private_region
grep -q " $rfunc\$" /proc/kallsyms || rfunc=request_device_private_region
while [ $i -lt "$FI_LOAD_ITERS" ]; do
	i=$((i + 1))
	if [ $((i % 2)) = 1 ]; then _f=memremap_pages; else _f=$rfunc; fi
	$FI filter $_f >/tmp/fi-filter || { cat /tmp/fi-filter; _bad=$((_bad + 1)); }
	_res=$($FI load "$ko" "$FI_MODPARAMS")
	echo "# load $i (filter $_f): $_res"
	eval "$(echo "$_res" | sed 's/^result //; s/ [A-Z].*//; s/\([a-z_]*\)=/r_\1=/g')"
	_inj=$((_inj + r_injections))
	if [ "$r_load" = 0 ]; then
		_ok=$((_ok + 1))
		[ -e /dev/hmm_dmirror0 ] || { echo "# loaded but no /dev/hmm_dmirror0"; _bad=$((_bad + 1)); }
	else
		_fails=$((_fails + 1))
		[ "$r_injections" -gt 0 ] || { echo "# load failed without any injection"; _bad=$((_bad + 1)); }
		if lsmod | grep -q '^test_hmm '; then echo "# load failed but test_hmm is loaded"; _bad=$((_bad + 1)); fi
	fi
	unload
	check_dmesg "load $i"
done
for a in failslab fail_page_alloc; do echo 0 >$D/$a/probability; done
$FI filter none >/dev/null
total_hits=$((total_hits + _inj))
echo "# module load: $FI_LOAD_ITERS loads, $_ok loaded, $_fails failed, $_inj injections"
if [ $_bad = 0 ] && [ $_inj -gt 0 ]; then
	t_ok "module load with injection in memremap_pages()/$rfunc(): $_fails failed cleanly, $_ok loaded"
else
	t_fail "module load with injection: $_bad problems, $_inj injections"
fi
}
phase load "module load with injection" && load_phase
$FI filter none >/dev/null

# Injection off from here.
for a in failslab fail_page_alloc; do echo 0 >$D/$a/probability; echo 1 >$D/$a/times; done
echo "# injections in total: $total_hits (debugfs times counters and fail-nth);" \
	"$(grep -c 'FAULT_INJECTION: forcing a failure' /tmp/fi-dmesg) reported in dmesg (the rest were __GFP_NOWARN or rate-limited)"
if [ $splats = 0 ]; then
	t_ok "no WARN/BUG/oops/KASAN/lockdep report while injecting"
else
	t_fail "$splats kernel reports while injecting (see the log)"
fi
if [ $unloads = 0 ]; then
	t_skip "no test_hmm range after unload: no phase ran"
elif [ $leftovers = 0 ]; then
	t_ok "no test_hmm range in /sys/kernel/debug/device_private after any of $unloads unloads"
else
	t_fail "$leftovers of $unloads unloads left test_hmm ranges or failed"
fi

# The window with injection off: placement, data, the selftest.
modprobe test_hmm $FI_MODPARAMS
if $FI check >/tmp/fi-out 2>&1; then
	sed -n 's/^# /# check: /p' /tmp/fi-out
	t_ok "window usable after fault injection: THP and small migration in the window, data intact"
else
	cat /tmp/fi-out
	t_fail "window usable after fault injection"
fi
_hm=1
if [ "$FI_HMM_MIGRATE" = 1 ] && [ -x /tests/hmm/hmm_migrate ]; then
	rmmod test_hmm && modprobe test_hmm $FI_MODPARAMS
	echo "# selftests/hmm/hmm_migrate after fault injection"
	(cd /tests/hmm && ./hmm_migrate) >/tmp/hmm-migrate.out 2>&1
	_hm=$?
	grep -E '^(ok|not ok)|#  *(FAIL|SKIP)|Expected|terminated|:[0-9]+:' /tmp/hmm-migrate.out | sed 's/^/# /' 
	if [ $_hm = 0 ]; then
		t_ok "selftests/hmm/hmm_migrate after fault injection ($(grep -c '^ok' /tmp/hmm-migrate.out) ok)"
	else
		t_fail "selftests/hmm/hmm_migrate after fault injection"
	fi
else
	t_skip "hmm_migrate after fault injection (FI_HMM_MIGRATE=0 or not built)"
fi
unload
check_dmesg "window check"

# kmemleak last: everything test_hmm registered is gone by now.
if [ $have_kl = 1 ]; then
	sleep 6	# kmemleak ignores objects younger than 5 s
	echo scan >$KL
	echo scan >$KL
	cat $KL >/tmp/fi-kmemleak
	_l=$(grep -c 'unreferenced object' /tmp/fi-kmemleak)
	if [ "$_l" = 0 ]; then
		t_ok "kmemleak: no leak after fault injection"
	else
		head -60 /tmp/fi-kmemleak | sed 's/^/# /'
		t_fail "kmemleak: $_l suspected leaks after fault injection"
	fi
else
	t_skip "kmemleak: not in this kernel (CONFIG_DEBUG_KMEMLEAK)"
fi
echo "# faultinject: $(($(date +%s) - T0)) s"
t_totals
