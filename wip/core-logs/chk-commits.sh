#!/bin/bash
# Compile the objects the core series touches at every commit, with the
# window on (+DEBUG_VM, DEBUG_VM_PGTABLE, DEBUG_VIRTUAL) and DEVICE_PRIVATE off.
C=~/.cache/sparsemem-devmem
SRC=$C/wt-core-chk
OBJS="mm/memremap.o mm/sparse.o mm/sparse-vmemmap.o mm/memory_hotplug.o mm/debug_vm_pgtable.o
 mm/compaction.o mm/mm_init.o mm/hmm.o mm/migrate_device.o mm/memory.o mm/swapfile.o kernel/resource.o
 kernel/vmcore_info.o arch/x86/mm/physaddr.o arch/x86/mm/init.o arch/x86/mm/init_64.o
 arch/x86/mm/kaslr.o lib/test_hmm.o drivers/base/memory.o"
mk() { flock $C/build.lock make -C $SRC O=$1 CC="ccache gcc" -j2 -s "${@:2}"; }
git -C $SRC checkout -q --detach core
for kind in on off; do
	O=$C/build-core-chk-$kind
	mkdir -p $O
	cp $C/build-core/.config $O/.config
	if [ $kind = on ]; then
		$SRC/scripts/config --file $O/.config -e DEBUG_VM -e DEBUG_VM_PGTABLE -e DEBUG_VIRTUAL -e PROC_KCORE
	else
		$SRC/scripts/config --file $O/.config -d DEVICE_PRIVATE -d TEST_HMM
	fi
	mk $O olddefconfig
 grep -E "^(CONFIG_DEVICE_PRIVATE|CONFIG_DEVICE_PRIVATE_PFN_WINDOW|CONFIG_DEBUG_VM_PGTABLE|CONFIG_DEBUG_VIRTUAL|CONFIG_VMCORE_INFO|CONFIG_TEST_HMM)=" $O/.config | tr '\n' ' '; echo
done
for c in $(git -C $SRC rev-list --reverse smdm-base..core); do
	git -C $SRC checkout -q --detach $c
	for kind in on off; do
		O=$C/build-core-chk-$kind
		objs=$OBJS
		grep -q "^CONFIG_VMCORE_INFO=y" $O/.config || objs=${objs/kernel\/vmcore_info.o/}
		grep -q "^CONFIG_TEST_HMM=" $O/.config || objs=${objs/lib\/test_hmm.o/}
		if mk $O $objs > $O/chk.log 2>&1; then r=ok; else r=FAIL; fi
		w=$(grep -c "warning:" $O/chk.log)
		echo "$(git -C $SRC log -1 --format='%h %s' $c) [$kind] $r warnings=$w"
		[ $r = ok ] && [ $w = 0 ] || grep -E "error|warning:" $O/chk.log | head -10
	done
done
