#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Compare the code of hot-path functions between two vmlinux files.

    hotpaths.py BASE_VMLINUX SERIES_VMLINUX [FUNC...]

Callers of pfn_to_page()/page_to_pfn()/page_zonenum() and of the softleaf
(swap entry) decoders are disassembled with objdump from both images and
normalized: instruction addresses become offsets in the function, branch
targets keep only <symbol+offset>, rip-relative displacements and absolute
kernel addresses are masked (their symbol, when objdump names one, is kept).
Prints one JSON object: per function "identical" or "different" with a
unified diff of the normalized code, and the section sizes of both images.
"""
import difflib
import json
import re
import subprocess
import sys

FUNCS = [
    # page table walkers that turn ptes/pmds into pages (pfn_to_page)
    "vm_normal_page", "vm_normal_page_pmd", "follow_page_pte",
    "page_vma_mapped_walk", "check_pte", "copy_page_range",
    "pagemap_pmd_range",
    # softleaf / swap-entry decoders (device private, migration entries)
    "do_swap_page", "softleaf_to_page", "migration_entry_wait",
    "remove_migration_pte", "try_to_migrate_one", "migrate_vma_collect_pmd",
    "hmm_vma_walk_pmd", "set_pmd_migration_entry", "remove_migration_pmd",
    "copy_huge_pmd", "zap_huge_pmd", "change_protection",
    # page_to_pfn / page_zonenum / pfn_to_online_page users
    "pfn_to_online_page", "free_frozen_pages", "__isolate_free_page",
    "move_freepages_block", "isolate_migratepages_block",
    "folio_mark_accessed", "stable_page_flags", "kpageflags_read",
    # pfn_valid() / __pfn_to_section() users (mem_section lookups)
    "get_pfnblock_flags_mask", "set_pfnblock_flags_mask",
    "__pageblock_pfn_to_page", "__virt_addr_valid", "page_ext_get",
    "__get_pfnblock_flags_mask", "pageblock_skip_persistent",
]

ADDR_RE = re.compile(r"^\s*([0-9a-f]+):\s*(.*)$")
TARGET_RE = re.compile(r"\b[0-9a-f]{16}\s+(<[^>]+>)")
COMMENT_RE = re.compile(r"#\s*[0-9a-f]+\s*(<[^>]+>)?")
RIP_RE = re.compile(r"-?0x[0-9a-f]+\(%rip\)")
KADDR_RE = re.compile(r"\$?0xffffffff[0-9a-f]{8}\b")
# per-cpu and other link-time displacements (7+ hex digits) off a register
DISP_RE = re.compile(r"-?0x[0-9a-f]{7,}(\()")
OTHER_RE = re.compile(r"<([^+>]+)\+0x[0-9a-f]+>")
IMM_RE = re.compile(r"\$-?0x[0-9a-f]+|\$[0-9]+")


def symbols(vmlinux):
    """name -> list of (start, end) for text symbols."""
    out = subprocess.run(["nm", "-S", "--defined-only", vmlinux],
                         capture_output=True, text=True, check=True).stdout
    syms = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[2] in "tT":
            start, size = int(f[0], 16), int(f[1], 16)
            syms.setdefault(f[3], []).append((start, start + size))
    return syms


def disasm(vmlinux, name, start, end):
    out = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", "-w",
         f"--start-address={start:#x}", f"--stop-address={end:#x}", vmlinux],
        capture_output=True, text=True, check=True).stdout
    lines = []
    for line in out.splitlines():
        m = ADDR_RE.match(line)
        if not m:
            continue
        ins = m.group(2).strip()
        ins = TARGET_RE.sub(r"\1", ins)
        ins = COMMENT_RE.sub(lambda c: "# " + (c.group(1) or ""), ins)
        ins = RIP_RE.sub("X(%rip)", ins)
        ins = KADDR_RE.sub("KADDR", ins)
        ins = DISP_RE.sub(r"DISP\1", ins)
        # targets outside this function (alternatives, jump labels placed
        # after _einittext, other functions): keep the symbol only
        ins = OTHER_RE.sub(lambda o: o.group(0) if o.group(1) == name
                           else f"<{o.group(1)}+OFF>", ins)
        ins = re.sub(r"\s+", " ", ins).strip()
        lines.append(f"+{int(m.group(1), 16) - start:#x} {ins}")
    return lines


def sizes(vmlinux):
    out = subprocess.run(["size", "-A", "-d", vmlinux], capture_output=True,
                         text=True, check=True).stdout
    res = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 2 and f[0] in (".text", ".data", ".bss", ".rodata",
                                    ".init.text", ".init.data"):
            res[f[0]] = int(f[1])
    return res


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    base, series = sys.argv[1], sys.argv[2]
    funcs = sys.argv[3:] or FUNCS
    sb, ss = symbols(base), symbols(series)
    result = {"functions": [], "size_base": sizes(base),
              "size_series": sizes(series)}
    for name in funcs:
        if name not in sb or name not in ss:
            result["functions"].append({"name": name, "status": "missing",
                                        "in_base": name in sb,
                                        "in_series": name in ss})
            continue
        for i, (rb, rs) in enumerate(zip(sb[name], ss[name])):
            a = disasm(base, name, *rb)
            b = disasm(series, name, *rs)
            # Offsets shift after the first changed instruction: compare
            # the instructions, show offsets only in the diff.
            strip = lambda ls: [x.split(" ", 1)[1] if " " in x else "" for x in ls]
            same = strip(a) == strip(b)
            imm = lambda ls: [IMM_RE.sub("$IMM", x) for x in strip(ls)]
            status = ("identical" if same else
                      "constants-only" if imm(a) == imm(b) else "different")
            entry = {"name": name + (f"#{i}" if len(sb[name]) > 1 else ""),
                     "status": status,
                     "insns_base": len(a), "insns_series": len(b)}
            if status == "constants-only":
                pairs = set()
                for x, y in zip(strip(a), strip(b)):
                    if x != y:
                        pairs.update(f"{u}->{v}" for u, v in
                                     zip(IMM_RE.findall(x), IMM_RE.findall(y))
                                     if u != v)
                entry["constants"] = sorted(pairs)
            if not same:
                entry["diff"] = "\n".join(difflib.unified_diff(
                    strip(a), strip(b), "base", "series", lineterm="", n=2))
            result["functions"].append(entry)
    json.dump(result, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
