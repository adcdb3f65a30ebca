#!/bin/sh
# The test suite inside one guest boot: upstream hmm-tests, then every
# program of the series' selftests/hmm, then module unload.  KUnit suites ran
# at boot already (their KTAP is in the console log).
. /smdm/lib.sh
# KEY=VALUE arguments (e.g. HMM_HOTPLUG_CYCLES=10) become the tests' environment.
# HMM_SUITE=rust runs only the Rust sample's part (and the kmemleak scan).
for a in "$@"; do case $a in *=*) export "$a" ;; esac; done
# selftests/hmm/hmm_hotplug.sh plugs pc-dimms through this command.
export HMM_DIMM_HELPER=/smdm/dimm
guest_facts
rc=0
if [ "${HMM_SUITE:-all}" != rust ]; then
	modprobe test_hmm || { echo "modprobe test_hmm failed"; rc=1; }
	grep 'hmm_dmirror' /proc/iomem | sed 's/^/iomem: /'
	[ -r /sys/kernel/debug/device_private ] && sed 's/^/device_private: /' /sys/kernel/debug/device_private

	echo "== upstream: mm/hmm-tests"
	/tests/hmm-tests || rc=1

	if [ -f /tests/hmm/kselftest-list.txt ]; then
		for t in $(sed 's/^[^:]*://' /tests/hmm/kselftest-list.txt); do
			echo "== selftests/hmm: $t"
			(cd /tests/hmm && ./$t) || rc=1
		done
	fi

	echo "== module unload"
	_t_n=0
	if rmmod test_hmm; then t_ok "rmmod test_hmm"; else t_fail "rmmod test_hmm"; rc=1; fi
	t_totals

	# The standard kselftest entry point, as a user runs it: nothing loaded,
	# hmm_migrate.sh loads test_hmm itself (HMM_KSELFTEST=1).  hmm_hotplug.sh
	# ran above: its last test leaves a probed memory block that cannot be
	# removed, so a second run in the same boot fails on that block.
	if [ "${HMM_KSELFTEST:-0}" = 1 ]; then
		# kselftest's runner calls 'timeout --foreground', which the
		# guest's busybox timeout does not know: a shim drops the option.
		if [ -L /usr/bin/timeout ]; then
			rm /usr/bin/timeout
			printf '#!/bin/sh\n[ "$1" = --foreground ] && shift\nexec /bin/busybox timeout "$@"\n' \
				>/usr/bin/timeout
			chmod +x /usr/bin/timeout
		fi
		echo "== kselftest: run_kselftest.sh -t hmm:hmm_migrate.sh"
		/tests/kselftest/run_kselftest.sh -t hmm:hmm_migrate.sh || rc=1
		[ ! -d /sys/module/test_hmm ] || { echo "test_hmm still loaded after run_kselftest.sh"; rc=1; }
	fi
fi

# The Rust sample samples/rust/rust_dmirror (series with CONFIG_RUST only):
# the series' migration tests, then the upstream hmm-tests cases that use no
# more than the ioctls it implements (READ, WRITE, MIGRATE_TO_DEV/SYS) on one
# device, through a /dev/hmm_dmirror0 node of its own (test_hmm is unloaded).
# A static list: the cases were chosen by the ioctls they use, not by result.
HMM_TESTS_RUST="open_close anon_read anon_read_prot anon_write anon_write_prot
anon_write_child anon_write_child_shared anon_write_huge anon_write_hugetlbfs
file_read file_write migrate migrate_file_private migrate_fault migrate_shared
migrate_multiple anon_read_multiple anon_teardown migrate_anon_huge_empty
migrate_anon_huge_zero migrate_anon_huge_free migrate_partial_unmap_fault
migrate_remap_fault"
if [ -n "$(find /lib/modules -name rust_dmirror.ko 2>/dev/null)" ]; then
	echo "== rust_dmirror"
	_t_n=0 _t_pass=0 _t_fail=0 _t_skip=0
	if modprobe rust_dmirror; then t_ok "modprobe rust_dmirror"; else t_fail "modprobe rust_dmirror"; rc=1; fi
	sed 's/^/device_private: /' /sys/kernel/debug/device_private
	echo "== selftests/hmm: hmm_migrate on rust_dmirror"
	(cd /tests/hmm && HMM_DMIRROR_DRIVER=rust_dmirror ./hmm_migrate) || rc=1
	echo "== upstream: mm/hmm-tests on rust_dmirror"
	minor=$(sed -n 's/^ *\([0-9]*\) rust_dmirror$/\1/p' /proc/misc)
	if [ -n "$minor" ] && mknod /dev/hmm_dmirror0 c 10 "$minor"; then
		sel=
		for t in $HMM_TESTS_RUST; do sel="$sel -r hmm.hmm_device_private.$t"; done
		# shellcheck disable=SC2086
		/tests/hmm-tests $sel || rc=1
		rm -f /dev/hmm_dmirror0
	else
		t_fail "no misc minor for rust_dmirror"; rc=1
	fi
	if rmmod rust_dmirror; then t_ok "rmmod rust_dmirror"; else t_fail "rmmod rust_dmirror"; rc=1; fi
	t_totals
fi

# Debug kernels: a kmemleak scan once every test has run; twice, because a
# scan holds back objects whose contents changed since the previous one, and
# objects younger than 5 s are not reported at all.
if [ -w /sys/kernel/debug/kmemleak ]; then
	echo "== kmemleak"
	_t_n=0 _t_pass=0 _t_fail=0 _t_skip=0
	sleep 6
	echo scan >/sys/kernel/debug/kmemleak
	echo scan >/sys/kernel/debug/kmemleak
	cat /sys/kernel/debug/kmemleak >/tmp/kmemleak
	leaks=$(grep -c 'unreferenced object' /tmp/kmemleak)
	head -200 /tmp/kmemleak
	if [ "$leaks" = 0 ]; then t_ok "kmemleak: no leak"; else t_fail "kmemleak: $leaks suspected leaks"; rc=1; fi
	t_totals
fi
exit $rc
