#!/bin/sh
# HMM_DMIRROR_READ of test_hmm's own device private pages after an
# invalidation emptied the mirror (patches/1-fixes/0001): the series must
# return the data; unfixed test_hmm (base) oopses in dmirror_do_read(), so
# scripts/test boots this alone.  scripts/guest-progs/hmm_devread.c says
# what is checked.
#
# Host side (the guest has no compiler): build the program for a kernel,
#   DIR=$(scripts/guest-progs/build base|series hmm_devread)
# Guest side:
#   scripts/vm --kernel base|series --add DIR --run scripts/guest/devread.sh

. /smdm/lib.sh
PROG=/tests/guest-progs/hmm_devread
echo "== devread: HMM_DMIRROR_READ of device pages the mirror lost"
echo "kernel: $(uname -r)"
[ -x $PROG ] || { echo "Bail out! no $PROG (scripts/guest-progs/build, scripts/vm --add)"; exit 1; }
modprobe test_hmm || { echo "Bail out! modprobe test_hmm failed"; exit 1; }
grep hmm_dmirror /proc/iomem | sed 's/^/# iomem: /'
DP=/sys/kernel/debug/device_private
[ -r $DP ] && sed 's/^/# device_private: /' $DP
rc=0
$PROG /dev/hmm_dmirror0 16 || rc=1
echo "== devread: unload"
_t_n=0
ktap_plan 1
if rmmod test_hmm; then t_ok "rmmod test_hmm"; else t_fail "rmmod test_hmm"; rc=1; fi
t_totals
exit $rc
