#!/bin/sh
# One guest of scripts/physbits-check: where the device private pfn window
# is on this CPU (or why it was refused), and device private memory at work
# there: upstream hmm-tests and hmm_migrate.  With DIMM=1 also hmm_hotplug.sh
# (pc-dimms plugged over the legacy placement's range).  With
# WINDOW_ADDR=ADDR, RAM is probed at that (window) address, and with DIMM=1
# also plugged there by the host: both must be refused without RAM there.
. /smdm/lib.sh
for a in "$@"; do case $a in *=*) export "$a" ;; esac; done
guest_facts
dmesg | grep -E 'device private memory: pfn window|device private pfn window' |
	sed 's/^\[[^]]*\] /boot: /'
grep -i 'device private pfn window' /proc/iomem | sed 's/^ */iomem: /'
rc=0
modprobe test_hmm || { echo "modprobe test_hmm failed"; rc=1; }
grep 'hmm_dmirror' /proc/iomem | sed 's/^ */iomem: /'
[ -r /sys/kernel/debug/device_private ] && sed 's/^/device_private: /' /sys/kernel/debug/device_private
echo "== upstream: mm/hmm-tests"
/tests/hmm-tests || rc=1
echo "== selftests/hmm: hmm_migrate"
(cd /tests/hmm && ./hmm_migrate) || rc=1
rmmod test_hmm || { echo "rmmod test_hmm failed"; rc=1; }

# With DIMM=1 the host can plug pc-dimms (maxmem covers the legacy
# placement's range): memory hotplug next to device private memory, as in
# the default suite guest.
if [ "${DIMM:-0}" = 1 ]; then
	echo "== selftests/hmm: hmm_hotplug.sh"
	(cd /tests/hmm && HMM_DIMM_HELPER=/smdm/dimm ./hmm_hotplug.sh) || rc=1
fi

if [ -n "${WINDOW_ADDR:-}" ]; then
	echo "== RAM at window address $WINDOW_ADDR"
	if err=$(echo "$WINDOW_ADDR" 2>&1 >/sys/devices/system/memory/probe); then
		echo "probe: accepted"
		rc=1
	else
		echo "probe: refused: ${err##*: }"
	fi
	if [ "${DIMM:-0}" = 1 ]; then
		out=$(host dimm_add win0 1073741824 "$WINDOW_ADDR") && echo "dimm: host plugged it: $out" ||
			echo "dimm: host refused: $out"
		sleep 3
		ram=$(grep -c "System RAM" /proc/iomem)
		high=$(sed -n 's/^ *\([0-9a-f]*\)-[0-9a-f]* : System RAM$/\1/p' /proc/iomem |
			while read -r st; do [ $((0x$st)) -ge $((WINDOW_ADDR)) ] && echo "$st"; done)
		if [ -n "$high" ]; then
			echo "dimm: System RAM at the window address ($high)"
			rc=1
		else
			echo "dimm: no System RAM at or above the window address ($ram System RAM ranges)"
		fi
		dmesg | grep -iE 'acpi.*(memory|PNP0C80)|exceeds maximum addressable' | tail -3 |
			sed 's/^\[[^]]*\] /dimm kernel: /'
		out=$(host dimm_del win0) || echo "dimm: unplug: $out"
	fi
fi
exit $rc
