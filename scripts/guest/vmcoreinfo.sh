#!/bin/sh
# Print the VMCOREINFO note that /proc/kcore carries (the text dump tools
# read from /proc/vmcore after a crash), one line each, between markers.
set -eu
[ -r /proc/kcore ] || { echo "no /proc/kcore (CONFIG_PROC_KCORE)"; exit 1; }
echo "@@VMCOREINFO-BEGIN"
dd if=/proc/kcore bs=4096 count=64 2>/dev/null | strings -n 6 |
	grep -E '^(OSRELEASE|BUILD-ID|PAGESIZE|SYMBOL|SIZE|OFFSET|LENGTH|NUMBER|CONFIG|KERNELOFFSET|KERNELPAGESIZE)[=(_A-Z]' || true
echo "@@VMCOREINFO-END"
