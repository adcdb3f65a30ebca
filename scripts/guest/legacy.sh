#!/bin/sh
# The A/B of selftests/hmm in one kernel: the series with test_hmm's legacy
# placement (legacy_placement=1, the placement before the series) must fail
# the tests of scripts/config/ab-expected-fail.txt for the reasons the base
# kernel fails them (scripts/summarize, kind series-legacy).  Needs the
# pc-dimm guest of scripts/test (DIMM_VM).
. /smdm/lib.sh
for a in "$@"; do case $a in *=*) export "$a" ;; esac; done
export HMM_DIMM_HELPER=/smdm/dimm
guest_facts
rc=0
modprobe test_hmm legacy_placement=1 || { echo "modprobe test_hmm legacy_placement=1 failed"; rc=1; }
grep 'hmm_dmirror' /proc/iomem | sed 's/^/iomem: /'

echo "== selftests/hmm: hmm_migrate -r hmm.window_placement (legacy_placement=1)"
(cd /tests/hmm && ./hmm_migrate -r hmm.window_placement) || rc=1
rmmod test_hmm || { echo "rmmod test_hmm failed"; rc=1; }

# Loads test_hmm with the parameter itself; its last test probes a memory
# block that cannot be removed: it runs last.
echo "== selftests/hmm: hmm_hotplug.sh legacy_placement=1"
(cd /tests/hmm && ./hmm_hotplug.sh legacy_placement=1) || rc=1
exit $rc
