#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Run hmm_migrate with its driver loaded: lib/test_hmm by default, the Rust
# sample rust_dmirror with HMM_DMIRROR_DRIVER=rust_dmirror.  A module this
# script loads is unloaded again at the end.  Extra arguments go to
# hmm_migrate (e.g. -r hmm.window_placement).

ksft_skip=4
mod=${HMM_DMIRROR_DRIVER:-test_hmm}

if [ "$(id -u)" -ne 0 ]; then
	echo "$0: must be run as root"
	exit $ksft_skip
fi

loaded=0
if [ ! -d "/sys/module/$mod" ]; then
	if ! modprobe -q "$mod"; then
		echo "$0: cannot load $mod (CONFIG_TEST_HMM=m or CONFIG_SAMPLE_RUST_DMIRROR=m)"
		exit $ksft_skip
	fi
	loaded=1
fi

"$(dirname "$0")/hmm_migrate" "$@"
rc=$?

if [ $loaded = 1 ] && ! modprobe -q -r "$mod"; then
	echo "$0: cannot unload $mod"
	[ $rc = 0 ] && rc=1
fi
exit $rc
