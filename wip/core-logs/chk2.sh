#!/bin/bash
# Reduced per-commit compile check, run inside ONE hold of build.lock.
# on  = build-core config + DEBUG_VM, DEBUG_VM_PGTABLE, DEBUG_VIRTUAL, PROC_KCORE (window on from x86 enable)
# off = build-core config with DEVICE_PRIVATE=n (TEST_HMM=n)
C=~/.cache/sparsemem-devmem
SRC=$C/wt-core-chk
mk() { make -C $SRC O=$1 CC="ccache gcc" -j2 -s "${@:2}"; }
git -C $SRC checkout -q --detach core
for kind in on off; do
	O=$C/build-core-chk-$kind
	[ -f $O/.config ] || { echo "no config $O"; exit 1; }
done
for c in $(git -C $SRC rev-list --reverse smdm-base..core); do
	git -C $SRC checkout -q --detach $c
	objs="mm/sparse.o mm/memremap.o"
	for f in $(git -C $SRC diff --name-only $c~1 $c -- '*.c'); do objs="$objs ${f%.c}.o"; done
	kinds=on
	n=$(git -C $SRC rev-list --count smdm-base..$c)
	case $n in 9|10|14) kinds="on off" ;; esac
	for kind in $kinds; do
		O=$C/build-core-chk-$kind
		o=$objs
		grep -q "^CONFIG_TEST_HMM=" $O/.config || o=${o/lib\/test_hmm.o/}
		grep -q "^CONFIG_VMCORE_INFO=y" $O/.config || o=${o/kernel\/vmcore_info.o/}
		grep -q "^CONFIG_DEBUG_VM_PGTABLE=y" $O/.config || o=${o/mm\/debug_vm_pgtable.o/}
		if mk $O $o > $O/chk.log 2>&1; then r=ok; else r=FAIL; fi
		w=$(grep -c "warning:" $O/chk.log)
		echo "$(git -C $SRC log -1 --format='%h %s' $c) [$kind: $o] $r warnings=$w"
		[ $r = ok ] && [ $w = 0 ] || grep -E "error|warning:" $O/chk.log | head -10
	done
done
# HEAD, window on, debug options: every touched object.
git -C $SRC checkout -q --detach core
O=$C/build-core-chk-on
o="mm/sparse.o mm/sparse-vmemmap.o mm/memremap.o mm/memory_hotplug.o mm/debug_vm_pgtable.o mm/compaction.o mm/mm_init.o kernel/resource.o kernel/vmcore_info.o arch/x86/mm/physaddr.o arch/x86/mm/init.o arch/x86/mm/init_64.o arch/x86/mm/kaslr.o lib/test_hmm.o mm/hmm.o mm/migrate_device.o"
if mk $O $o > $O/chk.log 2>&1; then r=ok; else r=FAIL; fi
echo "HEAD full [on+debug: $o] $r warnings=$(grep -c 'warning:' $O/chk.log)"
grep -E "error|warning:" $O/chk.log | head -10
