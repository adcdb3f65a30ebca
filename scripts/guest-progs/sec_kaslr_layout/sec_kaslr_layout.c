// SPDX-License-Identifier: GPL-2.0
/*
 * Prints the x86-64 kernel virtual memory layout as randomized at this boot
 * (memory KASLR: page_offset_base, vmalloc_base, vmemmap_base), the vmemmap
 * range of the device private pfn window, the fixed regions that follow,
 * and which parts of the window's vmemmap range are mapped in the kernel
 * page tables (walked from CR3).  Used by scripts/guest/kaslr.sh; the host
 * (scripts/robust kaslr) checks the numbers.  Loads, prints, stays loaded
 * until rmmod; does not change anything.
 *
 *   insmod sec_kaslr_layout.ko tag=NAME
 */
#include <linux/module.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/pgtable.h>
#include <asm/pgtable.h>
#include <asm/cpu_entry_area.h>
#include <asm/special_insns.h>
#include <asm/tlbflush.h>

static char *tag = "layout";
module_param(tag, charp, 0444);

#define P(fmt, ...) pr_info("sec_kaslr_layout %s: " fmt "\n", tag, ##__VA_ARGS__)

/* Mapped spans in [start, end), coalesced; at most MAXSPAN printed. */
#define MAXSPAN 64
static unsigned long span_s[MAXSPAN], span_e[MAXSPAN];
static int nspan, lost;

static void add_span(unsigned long s, unsigned long e)
{
	if (nspan && span_e[nspan - 1] == s) {
		span_e[nspan - 1] = e;
		return;
	}
	if (nspan == MAXSPAN) {
		lost++;
		return;
	}
	span_s[nspan] = s;
	span_e[nspan++] = e;
}

static unsigned long walk(pgd_t *pgd_base, unsigned long start, unsigned long end)
{
	unsigned long a = start, mapped = 0, next;

	while (a < end && a >= start) {
		pgd_t *pgd = pgd_offset_pgd(pgd_base, a);
		p4d_t *p4d;
		pud_t *pud;
		pmd_t *pmd;

		if (pgd_none(*pgd)) {
			next = (a & PGDIR_MASK) + PGDIR_SIZE;
			goto skip;
		}
		p4d = p4d_offset(pgd, a);
		if (p4d_none(*p4d)) {
			next = (a & P4D_MASK) + P4D_SIZE;
			goto skip;
		}
		pud = pud_offset(p4d, a);
		if (pud_none(*pud)) {
			next = (a & PUD_MASK) + PUD_SIZE;
			goto skip;
		}
		if (pud_leaf(*pud)) {
			next = (a & PUD_MASK) + PUD_SIZE;
			goto map;
		}
		pmd = pmd_offset(pud, a);
		next = (a & PMD_MASK) + PMD_SIZE;
		if (pmd_none(*pmd))
			goto skip;
map:
		if (next > end || next < a)
			next = end;
		add_span(a, next);
		mapped += next - a;
		a = next;
		continue;
skip:
		if (next > end || next < a)
			next = end;
		a = next;
		cond_resched();
	}
	return mapped;
}

static int __init sec_kaslr_layout_init(void)
{
	pgd_t *pgd = (pgd_t *)__va(read_cr3_pa());
	unsigned long w_s = (unsigned long)(vmemmap + DEVPRIV_PFN_START);
	unsigned long w_e = (unsigned long)(vmemmap + DEVPRIV_PFN_END);
	unsigned long mapped;
	int i;

	P("paging=%d max_physmem_bits=%d sizeof_page=%zu window_enabled=%d",
	  pgtable_l5_enabled() ? 5 : 4, MAX_PHYSMEM_BITS, sizeof(struct page),
	  devpriv_window_enabled());
	P("page_offset_base=0x%lx vmalloc_base=0x%lx vmalloc_end=0x%lx vmemmap_base=0x%lx",
	  page_offset_base, vmalloc_base, (unsigned long)VMALLOC_END, vmemmap_base);
	P("window_pfn_start=0x%lx window_pfn_end=0x%lx window_vmemmap_start=0x%lx window_vmemmap_end=0x%lx vmemmap_end_macro=0x%lx",
	  (unsigned long)DEVPRIV_PFN_START, (unsigned long)DEVPRIV_PFN_END, w_s, w_e,
	  (unsigned long)VMEMMAP_END);
	P("pfn_to_page_window_start=0x%lx", (unsigned long)pfn_to_page(DEVPRIV_PFN_START));
	P("ldt_base=0x%lx ldt_end=0x%lx cpu_entry_area_base=0x%lx cpu_entry_area_end=0x%lx espfix_base=0x%lx efi_va_end=0x%lx efi_va_start=0x%lx kernel_map=0x%lx modules_vaddr=0x%lx modules_end=0x%lx",
	  (unsigned long)LDT_BASE_ADDR, (unsigned long)LDT_END_ADDR,
	  (unsigned long)CPU_ENTRY_AREA_BASE,
	  (unsigned long)(CPU_ENTRY_AREA_BASE + CPU_ENTRY_AREA_MAP_SIZE),
	  (unsigned long)ESPFIX_BASE_ADDR, (unsigned long)EFI_VA_END,
	  (unsigned long)EFI_VA_START, (unsigned long)__START_KERNEL_map,
	  (unsigned long)MODULES_VADDR, (unsigned long)MODULES_END);
	mapped = walk(pgd, w_s, w_e);
	P("window_vmemmap_mapped_bytes=%lu spans=%d spans_not_printed=%d", mapped, nspan, lost);
	for (i = 0; i < nspan; i++)
		P("window_vmemmap_span=0x%lx-0x%lx pfns=0x%lx-0x%lx", span_s[i], span_e[i],
		  (unsigned long)((struct page *)span_s[i] - vmemmap),
		  (unsigned long)((struct page *)span_e[i] - vmemmap));
	P("done");
	return 0;
}

static void __exit sec_kaslr_layout_exit(void)
{
}

module_init(sec_kaslr_layout_init);
module_exit(sec_kaslr_layout_exit);
MODULE_DESCRIPTION("Print the randomized kernel layout and the device private window's vmemmap");
MODULE_LICENSE("GPL");
