#!/bin/sh
# hmm_migrate on the patched kernel with test_hmm forced to the legacy
# placement (request_free_mem_region): every test but hmm.window_placement
# must pass, window_placement must fail.  Run:
#   scripts/vm --kernel series --run wip/tests/legacy-migrate.sh --log ...
. /smdm/lib.sh
modprobe test_hmm legacy_placement=1 || exit 1
grep hmm_dmirror /proc/iomem | sed 's/^/iomem: /'
cd /tests/hmm && ./hmm_migrate
exit 0
