#!/bin/sh
# The test suite inside one guest boot: upstream hmm-tests, then every
# program of the series' selftests/hmm, then module unload.  KUnit suites ran
# at boot already (their KTAP is in the console log).
. /smdm/lib.sh
# KEY=VALUE arguments (e.g. HMM_HOTPLUG_CYCLES=10) become the tests' environment.
for a in "$@"; do case $a in *=*) export "$a" ;; esac; done
echo "== guest facts"
echo "kernel: $(uname -r)"
if grep -qw la57 /proc/cpuinfo; then echo "paging: 5-level (la57)"; else echo "paging: 4-level"; fi
grep -m1 'address sizes' /proc/cpuinfo
grep -q nokaslr /proc/cmdline && echo "kaslr: off" || echo "kaslr: on"
rc=0
modprobe test_hmm || { echo "modprobe test_hmm failed"; rc=1; }
grep 'hmm_dmirror' /proc/iomem | sed 's/^/iomem: /'
[ -r /proc/device_private ] && sed 's/^/device_private: /' /proc/device_private

echo "== upstream: mm/hmm-tests"
/tests/hmm-tests || rc=1

# The series' tests start from a freshly loaded test_hmm: hmm-tests leave
# chunks registered, and hmm.more_regions needs to see a new one appear.
rmmod test_hmm && modprobe test_hmm || { echo "reloading test_hmm failed"; rc=1; }

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
exit $rc
