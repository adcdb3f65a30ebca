// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests for the device private pfn window: its boundaries, the
 * entries that point into it, and the allocator of its ranges.
 */
#include <kunit/device.h>
#include <kunit/test.h>
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/ioport.h>
#include <linux/kthread.h>
#include <linux/leafops.h>
#include <linux/memremap.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/pfn.h>
#include <linux/random.h>
#include <linux/sizes.h>
#include <linux/swapops.h>

MODULE_IMPORT_NS("EXPORTED_FOR_KUNIT_TESTING");

#define SECTION_BYTES	(PAGES_PER_SECTION << PAGE_SHIFT)

/* ---- the window's boundaries ---- */

/* Whether the memory section of @pfn is one of the window's. */
static bool pfn_in_window(unsigned long pfn)
{
	return section_nr_in_devpriv_window(pfn_to_section_nr(pfn));
}

#ifdef CONFIG_ARM64
/*
 * The window's struct pages lie inside the vmemmap area whatever the RAM
 * base, above those of the pfns the linear map can cover, and apart from
 * what KASLR moves: the kernel image, in vmalloc space, and the modules
 * below it.  The address of a function in the image is printed, so that
 * boots with different seeds can be told apart.
 */
static void devpriv_window_arm64_layout(struct kunit *test)
{
	unsigned long first = (unsigned long)pfn_to_page(DEVPRIV_PFN_START);
	unsigned long end = (unsigned long)pfn_to_page(DEVPRIV_PFN_END);
	unsigned long text = (unsigned long)devpriv_window_enabled;

	KUNIT_EXPECT_GE(test, first, VMEMMAP_START);
	KUNIT_EXPECT_LE(test, end, VMEMMAP_END);
	KUNIT_EXPECT_GE(test, first,
			(unsigned long)pfn_to_page(PHYS_PFN(DIRECT_MAP_PHYSMEM_END) + 1));
	KUNIT_EXPECT_GT(test, first, VMALLOC_END);
	KUNIT_EXPECT_GE(test, first, MODULES_END);
	KUNIT_EXPECT_LE(test, end, PCI_IO_START);
	KUNIT_EXPECT_GE(test, text, MODULES_END);
	KUNIT_EXPECT_LT(test, text, VMALLOC_END);
	kunit_info(test, "struct pages [%#lx, %#lx), vmemmap [%#lx, %#lx), devpriv_window_enabled() at %#lx\n",
		   first, end, VMEMMAP_START, VMEMMAP_END, text);
}
#endif

static void devpriv_window_bounds(struct kunit *test)
{
	KUNIT_EXPECT_GE(test, DEVPRIV_SECTIONS_BITS, 1);
	KUNIT_EXPECT_EQ(test, DEVPRIV_PFN_START,
			1UL << (MAX_PHYSMEM_BITS - PAGE_SHIFT));
	KUNIT_EXPECT_EQ(test, DEVPRIV_PFN_END - DEVPRIV_PFN_START,
			DEVPRIV_PFN_START * ((1UL << DEVPRIV_SECTIONS_BITS) - 1));
	KUNIT_EXPECT_EQ(test, DEVPRIV_PFN_START % PAGES_PER_SECTION, 0);
	KUNIT_EXPECT_EQ(test, DEVPRIV_PFN_END % PAGES_PER_SECTION, 0);
	KUNIT_EXPECT_EQ(test, NR_MEM_SECTIONS,
			NR_PHYS_MEM_SECTIONS << DEVPRIV_SECTIONS_BITS);
#ifdef CONFIG_X86_64
	/* The numbers the interface contract promises on x86-64. */
	KUNIT_EXPECT_EQ(test, DEVPRIV_SECTIONS_BITS, 1);
	if (pgtable_l5_enabled()) {
		KUNIT_EXPECT_EQ(test, DEVPRIV_PFN_START, 0x10000000000UL);
		KUNIT_EXPECT_EQ(test, DEVPRIV_PFN_END, 0x20000000000UL);
	} else {
		KUNIT_EXPECT_EQ(test, DEVPRIV_PFN_START, 0x400000000UL);
		KUNIT_EXPECT_EQ(test, DEVPRIV_PFN_END, 0x800000000UL);
	}
#endif
#ifdef CONFIG_ARM64
	/* 4K pages, 48-bit VA and PA: the only arm64 layout with the window. */
	KUNIT_EXPECT_EQ(test, DEVPRIV_SECTIONS_BITS, 1);
	KUNIT_EXPECT_EQ(test, DEVPRIV_PFN_START, 0x1000000000UL);
	KUNIT_EXPECT_EQ(test, DEVPRIV_PFN_END, 0x2000000000UL);
	devpriv_window_arm64_layout(test);
#endif
	/* The whole window is addressable as phys_addr_t and pfn. */
	KUNIT_EXPECT_EQ(test, PHYS_PFN(PFN_PHYS(DEVPRIV_PFN_END - 1)),
			DEVPRIV_PFN_END - 1);
	kunit_info(test, "window pfns [%#lx, %#lx), %s paging\n",
		   DEVPRIV_PFN_START, DEVPRIV_PFN_END,
		   pgtable_l5_enabled() ? "5-level" : "4-level");
}

static void devpriv_window_sections(struct kunit *test)
{
	unsigned long last_phys = DEVPRIV_PFN_START - 1;
	unsigned long first = DEVPRIV_PFN_START, last = DEVPRIV_PFN_END - 1;

	KUNIT_EXPECT_EQ(test, pfn_to_section_nr(last_phys), NR_PHYS_MEM_SECTIONS - 1);
	KUNIT_EXPECT_EQ(test, pfn_to_section_nr(first), NR_PHYS_MEM_SECTIONS);
	KUNIT_EXPECT_EQ(test, pfn_to_section_nr(last), NR_MEM_SECTIONS - 1);
	KUNIT_EXPECT_EQ(test, section_nr_to_pfn(NR_PHYS_MEM_SECTIONS), first);
	KUNIT_EXPECT_EQ(test, section_nr_to_pfn(NR_MEM_SECTIONS - 1) +
			PAGES_PER_SECTION - 1, last);

	KUNIT_EXPECT_FALSE(test, pfn_in_window(0));
	KUNIT_EXPECT_FALSE(test, pfn_in_window(last_phys));
	KUNIT_EXPECT_TRUE(test, pfn_in_window(first));
	KUNIT_EXPECT_TRUE(test, pfn_in_window(first + 1));
	KUNIT_EXPECT_TRUE(test, pfn_in_window(last));
	KUNIT_EXPECT_FALSE(test, pfn_in_window(DEVPRIV_PFN_END));
	KUNIT_EXPECT_FALSE(test, pfn_in_window(ULONG_MAX));

	/* The swap code's one-compare version agrees at every boundary. */
	KUNIT_EXPECT_FALSE(test, swp_pfn_in_devpriv_window(0));
	KUNIT_EXPECT_FALSE(test, swp_pfn_in_devpriv_window(last_phys));
	KUNIT_EXPECT_TRUE(test, swp_pfn_in_devpriv_window(first));
	KUNIT_EXPECT_TRUE(test, swp_pfn_in_devpriv_window(last));
	KUNIT_EXPECT_FALSE(test, swp_pfn_in_devpriv_window(DEVPRIV_PFN_END));
	KUNIT_EXPECT_FALSE(test, swp_pfn_in_devpriv_window(ULONG_MAX));

	KUNIT_EXPECT_FALSE(test, section_nr_in_devpriv_window(NR_PHYS_MEM_SECTIONS - 1));
	KUNIT_EXPECT_TRUE(test, section_nr_in_devpriv_window(NR_PHYS_MEM_SECTIONS));
	KUNIT_EXPECT_TRUE(test, section_nr_in_devpriv_window(NR_MEM_SECTIONS - 1));
	KUNIT_EXPECT_FALSE(test, section_nr_in_devpriv_window(NR_MEM_SECTIONS));
}

static void devpriv_window_pfn_valid(struct kunit *test)
{
	void *buf = kunit_kzalloc(test, PAGE_SIZE, GFP_KERNEL);
	unsigned long ram;

	KUNIT_ASSERT_NOT_NULL(test, buf);
	ram = page_to_pfn(virt_to_page(buf));

	/* RAM is valid; nothing beyond the last section ever is. */
	KUNIT_EXPECT_TRUE(test, pfn_valid(ram));
	KUNIT_EXPECT_FALSE(test, pfn_in_window(ram));
	KUNIT_EXPECT_FALSE(test, pfn_valid(DEVPRIV_PFN_END));
	KUNIT_EXPECT_FALSE(test, pfn_valid(DEVPRIV_PFN_END + PAGES_PER_SECTION));
	KUNIT_EXPECT_FALSE(test, pfn_valid(ULONG_MAX >> PAGE_SHIFT));
	/* No memory map at the very top of the window. */
	KUNIT_EXPECT_FALSE(test, pfn_valid(DEVPRIV_PFN_END - 1));
}

/*
 * mem_section keeps mainline's size: the window has roots of its own, which
 * only exist once a window section was added.
 */
static void devpriv_window_roots(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, NR_SECTION_ROOTS,
			DIV_ROUND_UP(1UL << (MAX_PHYSMEM_BITS - SECTION_SIZE_BITS),
				     SECTIONS_PER_ROOT));
	KUNIT_EXPECT_EQ(test, NR_DEVPRIV_SECTION_ROOTS,
			DIV_ROUND_UP(NR_MEM_SECTIONS - NR_PHYS_MEM_SECTIONS,
				     SECTIONS_PER_ROOT));
	KUNIT_EXPECT_NULL(test, __nr_to_section(NR_MEM_SECTIONS));
	if (!READ_ONCE(devpriv_mem_section))
		KUNIT_EXPECT_NULL(test, __nr_to_section(NR_PHYS_MEM_SECTIONS));
	kunit_info(test, "window section roots: %s (%lu bytes when allocated)\n",
		   READ_ONCE(devpriv_mem_section) ? "allocated" : "not allocated",
		   NR_DEVPRIV_SECTION_ROOTS * sizeof(struct mem_section *));
}

/* ---- device private memory mapped in the window ---- */

static void devpriv_kunit_page_free(struct folio *folio)
{
}

static vm_fault_t devpriv_kunit_migrate_to_ram(struct vm_fault *vmf)
{
	return VM_FAULT_SIGBUS;
}

static const struct dev_pagemap_ops devpriv_kunit_ops = {
	.folio_free = devpriv_kunit_page_free,
	.migrate_to_ram = devpriv_kunit_migrate_to_ram,
};

/*
 * memremap_pages() of a region from request_device_private_region(): the
 * pfns are in the window, pfn_valid() exactly while it is mapped, and
 * struct page <-> pfn round-trips at both ends of the range.
 */
static void devpriv_window_memremap(struct kunit *test)
{
	struct dev_pagemap *pgmap;
	unsigned long first, last;
	struct resource *res;
	struct page *page;
	void *addr;

	if (!devpriv_window_enabled())
		kunit_skip(test, "the architecture did not enable the window");

	res = request_device_private_region(SECTION_BYTES, "devpriv_kunit");
	KUNIT_ASSERT_FALSE_MSG(test, IS_ERR_OR_NULL(res), "%ld", PTR_ERR(res));
	first = PHYS_PFN(res->start);
	last = PHYS_PFN(res->end);
	KUNIT_EXPECT_TRUE(test, pfn_in_window(first));
	KUNIT_EXPECT_TRUE(test, pfn_in_window(last));
	KUNIT_EXPECT_FALSE(test, pfn_valid(first));

	pgmap = kunit_kzalloc(test, sizeof(*pgmap), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, pgmap);
	pgmap->type = MEMORY_DEVICE_PRIVATE;
	pgmap->range.start = res->start;
	pgmap->range.end = res->end;
	pgmap->nr_range = 1;
	pgmap->ops = &devpriv_kunit_ops;
	pgmap->owner = test;
	addr = memremap_pages(pgmap, NUMA_NO_NODE);
	if (IS_ERR(addr)) {
		release_device_private_region(res);
		KUNIT_FAIL(test, "memremap_pages: %ld", PTR_ERR(addr));
		return;
	}

	KUNIT_EXPECT_TRUE(test, pfn_valid(first));
	KUNIT_EXPECT_TRUE(test, pfn_valid(last));
	/* The window's section roots exist from the first registration on. */
	KUNIT_EXPECT_NOT_NULL(test, READ_ONCE(devpriv_mem_section));
	KUNIT_EXPECT_NOT_NULL(test, __pfn_to_section(first));
	page = pfn_to_page(first);
	KUNIT_EXPECT_EQ(test, page_to_pfn(page), first);
	KUNIT_EXPECT_TRUE(test, is_device_private_page(page));
	KUNIT_EXPECT_TRUE(test, is_zone_device_page(page));
	KUNIT_EXPECT_PTR_EQ(test, page_pgmap(page), pgmap);
	page = pfn_to_page(last);
	KUNIT_EXPECT_EQ(test, page_to_pfn(page), last);
	KUNIT_EXPECT_TRUE(test, is_device_private_page(page));
	/* The neighbours stay invalid. */
	if (first > DEVPRIV_PFN_START)
		KUNIT_EXPECT_FALSE(test, pfn_valid(first - 1));
	if (last + 1 < DEVPRIV_PFN_END)
		KUNIT_EXPECT_FALSE(test, pfn_valid(last + 1));

	memunmap_pages(pgmap);
	KUNIT_EXPECT_FALSE(test, pfn_valid(first));
	release_device_private_region(res);
}

/* The public allocator: in the window and not in /proc/iomem's tree. */
static void devpriv_window_request(struct kunit *test)
{
	struct resource *res;

	KUNIT_EXPECT_PTR_EQ(test, request_device_private_region(0, "devpriv_kunit"),
			    ERR_PTR(-EINVAL));
	res = request_device_private_region(1, "devpriv_kunit");
	KUNIT_ASSERT_FALSE_MSG(test, IS_ERR_OR_NULL(res), "%ld", PTR_ERR(res));
	KUNIT_EXPECT_EQ(test, resource_size(res), SECTION_BYTES);
	KUNIT_EXPECT_EQ(test, res->start % SECTION_BYTES, 0);
	KUNIT_EXPECT_STREQ(test, res->name, "devpriv_kunit");
	if (devpriv_window_enabled()) {
		KUNIT_EXPECT_TRUE(test, pfn_in_window(PHYS_PFN(res->start)));
		KUNIT_EXPECT_TRUE(test, pfn_in_window(PHYS_PFN(res->end)));
		KUNIT_EXPECT_PTR_NE(test, res->parent, &iomem_resource);
		KUNIT_EXPECT_STREQ(test, res->parent->name, "Device private memory");
	} else {
		KUNIT_EXPECT_PTR_EQ(test, res->parent, &iomem_resource);
	}
	release_device_private_region(res);
}

/*
 * The managed variant: named after the device, released early by
 * devm_release_device_private_region() and the rest when the device goes.
 */
static void devpriv_window_request_devm(struct kunit *test)
{
	struct resource *res, *res2;
	resource_size_t start, start2;
	struct device *dev;

	dev = kunit_device_register(test, "devpriv_kunit_devm");
	KUNIT_ASSERT_FALSE(test, IS_ERR(dev));

	KUNIT_EXPECT_PTR_EQ(test, devm_request_device_private_region(dev, 0),
			    ERR_PTR(-EINVAL));
	res = devm_request_device_private_region(dev, SECTION_BYTES);
	KUNIT_ASSERT_FALSE_MSG(test, IS_ERR_OR_NULL(res), "%ld", PTR_ERR(res));
	KUNIT_EXPECT_STREQ(test, res->name, dev_name(dev));
	res2 = devm_request_device_private_region(dev, SECTION_BYTES);
	KUNIT_ASSERT_FALSE_MSG(test, IS_ERR_OR_NULL(res2), "%ld", PTR_ERR(res2));
	start = res->start;
	start2 = res2->start;

	/* Released now: first fit in the window finds its range again. */
	devm_release_device_private_region(dev, res2);
	res2 = request_device_private_region(SECTION_BYTES, "devpriv_kunit");
	KUNIT_ASSERT_FALSE_MSG(test, IS_ERR_OR_NULL(res2), "%ld", PTR_ERR(res2));
	if (devpriv_window_enabled())
		KUNIT_EXPECT_EQ(test, res2->start, start2);
	release_device_private_region(res2);

	/* The other one goes with the device. */
	kunit_device_unregister(test, dev);
	res = request_device_private_region(SECTION_BYTES, "devpriv_kunit");
	KUNIT_ASSERT_FALSE_MSG(test, IS_ERR_OR_NULL(res), "%ld", PTR_ERR(res));
	if (devpriv_window_enabled())
		KUNIT_EXPECT_EQ(test, res->start, start);
	release_device_private_region(res);
}

static struct kunit_case devpriv_window_pfn_cases[] = {
	KUNIT_CASE(devpriv_window_bounds),
	KUNIT_CASE(devpriv_window_sections),
	KUNIT_CASE(devpriv_window_pfn_valid),
	KUNIT_CASE(devpriv_window_roots),
	KUNIT_CASE(devpriv_window_request),
	KUNIT_CASE(devpriv_window_request_devm),
	KUNIT_CASE(devpriv_window_memremap),
	{}
};

static struct kunit_suite devpriv_window_pfn_suite = {
	.name = "devpriv_window_pfn",
	.test_cases = devpriv_window_pfn_cases,
};

/* ---- entries pointing into the window ---- */

static void expect_migration(struct kunit *test, softleaf_t e, unsigned long pfn,
			     bool write, bool excl, bool young, bool dirty);

static const unsigned long *entry_pfns(void)
{
	static unsigned long pfns[5];

	pfns[0] = DEVPRIV_PFN_START;
	pfns[1] = DEVPRIV_PFN_START + 1;
	pfns[2] = DEVPRIV_PFN_START + PAGES_PER_SECTION - 1;
	pfns[3] = DEVPRIV_PFN_END - 1;
	pfns[4] = DEVPRIV_PFN_START - 1;		/* last physical pfn */
	return pfns;
}

static softleaf_t pte_round_trip(softleaf_t entry)
{
	return softleaf_from_pte(softleaf_to_pte(entry));
}

static void devpriv_entry_device_private(struct kunit *test)
{
	const unsigned long *pfns = entry_pfns();
	softleaf_t e;
	int i;

	for (i = 0; i < 5; i++) {
		e = pte_round_trip(make_writable_device_private_entry(pfns[i]));
		KUNIT_EXPECT_TRUE(test, softleaf_is_device_private(e));
		KUNIT_EXPECT_TRUE(test, softleaf_is_device_private_write(e));
		KUNIT_EXPECT_TRUE(test, softleaf_has_pfn(e));
		KUNIT_EXPECT_EQ_MSG(test, softleaf_to_pfn(e), pfns[i], "pfn %#lx", pfns[i]);

		e = pte_round_trip(make_readable_device_private_entry(pfns[i]));
		KUNIT_EXPECT_TRUE(test, softleaf_is_device_private(e));
		KUNIT_EXPECT_FALSE(test, softleaf_is_device_private_write(e));
		KUNIT_EXPECT_EQ_MSG(test, softleaf_to_pfn(e), pfns[i], "pfn %#lx", pfns[i]);
		KUNIT_EXPECT_FALSE(test, softleaf_is_migration(e));
	}
}

/*
 * Entries of window pfns have window types and hold the pfn relative to the
 * window, within SWP_PFN_BITS; entries of physical pfns are encoded exactly
 * as without the window.  Making an entry readable keeps both.
 */
static void devpriv_entry_encoding(struct kunit *test)
{
	const unsigned long *pfns = entry_pfns();
	softleaf_t e;
	int i;

	for (i = 0; i < 5; i++) {
		bool window = pfn_in_window(pfns[i]);
		unsigned long off = window ? pfns[i] - DEVPRIV_PFN_START : pfns[i];

		e = make_writable_device_private_entry(pfns[i]);
		KUNIT_EXPECT_EQ(test, swp_offset(e), off);
		KUNIT_EXPECT_EQ(test, swp_type(e),
				window ? SWP_WINDOW_TYPE(SWP_DEVICE_WRITE) : SWP_DEVICE_WRITE);
		e = pte_round_trip(make_readable_device_private_entry_from(e));
		KUNIT_EXPECT_EQ(test, swp_type(e),
				window ? SWP_WINDOW_TYPE(SWP_DEVICE_READ) : SWP_DEVICE_READ);
		KUNIT_EXPECT_EQ_MSG(test, softleaf_to_pfn(e), pfns[i], "pfn %#lx", pfns[i]);

		e = make_writable_migration_entry(pfns[i]);
		KUNIT_EXPECT_EQ(test, swp_offset(e), off);
		KUNIT_EXPECT_EQ(test, swp_offset(e) & ~SWP_PFN_MASK, 0);
		KUNIT_EXPECT_EQ(test, swp_type(e), window ?
				SWP_WINDOW_TYPE(SWP_MIGRATION_WRITE) : SWP_MIGRATION_WRITE);
		e = make_migration_entry_dirty(make_migration_entry_young(e));
		e = pte_round_trip(make_readable_exclusive_migration_entry_from(e));
		expect_migration(test, e, pfns[i], false, true, true, true);
		e = pte_round_trip(make_readable_migration_entry_from(e));
		expect_migration(test, e, pfns[i], false, false, true, true);
	}
	/* The window types take the top of the swap type space. */
	KUNIT_EXPECT_EQ(test, SWP_WINDOW_TYPE(SWP_DEVICE_READ), (1 << MAX_SWAPFILES_SHIFT) - 1);
	KUNIT_EXPECT_GT(test, SWP_WINDOW_FIRST, SWP_PTE_MARKER);
	kunit_info(test, "MAX_SWAPFILES %d, window entry types %d-%d\n", MAX_SWAPFILES,
		   SWP_WINDOW_FIRST, SWP_WINDOW_TYPE(SWP_DEVICE_READ));
}

static void expect_migration(struct kunit *test, softleaf_t e, unsigned long pfn,
			     bool write, bool excl, bool young, bool dirty)
{
	bool ad = migration_entry_supports_ad();

	KUNIT_EXPECT_TRUE(test, softleaf_is_migration(e));
	KUNIT_EXPECT_EQ(test, softleaf_is_migration_write(e), write);
	KUNIT_EXPECT_EQ(test, softleaf_is_migration_read_exclusive(e), excl);
	KUNIT_EXPECT_EQ_MSG(test, softleaf_to_pfn(e), pfn, "pfn %#lx young %d dirty %d",
			    pfn, young, dirty);
	KUNIT_EXPECT_EQ(test, softleaf_is_migration_young(e), young && ad);
	KUNIT_EXPECT_EQ(test, softleaf_is_migration_dirty(e), dirty && ad);
}

static void devpriv_entry_migration(struct kunit *test)
{
	const unsigned long *pfns = entry_pfns();
	int i, kind, ad;

	if (!IS_ENABLED(CONFIG_MIGRATION))
		kunit_skip(test, "CONFIG_MIGRATION is off");
	kunit_info(test, "migration entries %s A/D bits\n",
		   migration_entry_supports_ad() ? "keep" : "drop");

	for (i = 0; i < 5; i++) {
		for (kind = 0; kind < 3; kind++) {
			for (ad = 0; ad < 4; ad++) {
				bool young = ad & 1, dirty = ad & 2;
				swp_entry_t e;

				if (kind == 0)
					e = make_readable_migration_entry(pfns[i]);
				else if (kind == 1)
					e = make_readable_exclusive_migration_entry(pfns[i]);
				else
					e = make_writable_migration_entry(pfns[i]);
				if (young)
					e = make_migration_entry_young(e);
				if (dirty)
					e = make_migration_entry_dirty(e);
				expect_migration(test, pte_round_trip(e), pfns[i],
						 kind == 2, kind == 1, young, dirty);
			}
		}
	}
}

static void devpriv_entry_pmd(struct kunit *test)
{
#ifdef CONFIG_ARCH_HAS_PMD_SOFTLEAVES
	const unsigned long *pfns = entry_pfns();
	softleaf_t e;
	int i;

	for (i = 0; i < 5; i++) {
		unsigned long pfn = ALIGN_DOWN(pfns[i], HPAGE_PMD_NR);

		e = softleaf_from_pmd(swp_entry_to_pmd(make_writable_device_private_entry(pfn)));
		KUNIT_EXPECT_TRUE(test, softleaf_is_device_private_write(e));
		KUNIT_EXPECT_EQ(test, softleaf_to_pfn(e), pfn);

		e = make_writable_migration_entry(pfn);
		e = make_migration_entry_dirty(make_migration_entry_young(e));
		e = softleaf_from_pmd(swp_entry_to_pmd(e));
		expect_migration(test, e, pfn, true, false, true, true);
	}
#else
	kunit_skip(test, "no PMD migration entries (ARCH_HAS_PMD_SOFTLEAVES)");
#endif
}

static struct kunit_case devpriv_entry_cases[] = {
	KUNIT_CASE(devpriv_entry_device_private),
	KUNIT_CASE(devpriv_entry_encoding),
	KUNIT_CASE(devpriv_entry_migration),
	KUNIT_CASE(devpriv_entry_pmd),
	{}
};

static struct kunit_suite devpriv_entry_suite = {
	.name = "devpriv_window_entries",
	.test_cases = devpriv_entry_cases,
};

/* ---- the region allocator, on a small root of its own ---- */

#define TEST_SECTIONS	8

struct devpriv_alloc_ctx {
	struct devpriv_region_root root;
};

static int devpriv_alloc_init(struct kunit *test)
{
	struct devpriv_alloc_ctx *ctx;

	ctx = kunit_kzalloc(test, sizeof(*ctx), GFP_KERNEL);
	if (!ctx)
		return -ENOMEM;
	/* Anywhere: the root is a private tree, not iomem_resource. */
	ctx->root.res.start = 64 * SECTION_BYTES;
	ctx->root.res.end = ctx->root.res.start + TEST_SECTIONS * SECTION_BYTES - 1;
	ctx->root.res.name = "devpriv_kunit root";
	ctx->root.res.flags = IORESOURCE_MEM;
	test->priv = ctx;
	return 0;
}

static void devpriv_alloc_exit(struct kunit *test)
{
	struct devpriv_alloc_ctx *ctx = test->priv;

	/* Every test must have released what it took. */
	KUNIT_EXPECT_NULL(test, ctx->root.res.child);
	KUNIT_EXPECT_NULL(test, ctx->root.packed);
}

static struct resource *alloc_in(struct kunit *test, resource_size_t size)
{
	struct devpriv_alloc_ctx *ctx = test->priv;

	return __request_device_private_region(&ctx->root, size, "devpriv_kunit");
}

static resource_size_t sec_off(struct kunit *test, struct resource *res)
{
	struct devpriv_alloc_ctx *ctx = test->priv;

	return (res->start - ctx->root.res.start) / SECTION_BYTES;
}

static void devpriv_alloc_alignment(struct kunit *test)
{
	struct devpriv_alloc_ctx *ctx = test->priv;
	struct resource *a, *b, *c;

	a = alloc_in(test, 1);
	KUNIT_ASSERT_FALSE(test, IS_ERR_OR_NULL(a));
	KUNIT_EXPECT_EQ(test, a->start, ctx->root.res.start);
	KUNIT_EXPECT_EQ(test, resource_size(a), SECTION_BYTES);
	KUNIT_EXPECT_PTR_EQ(test, a->parent, &ctx->root.res);
	KUNIT_EXPECT_STREQ(test, a->name, "devpriv_kunit");

	/* Unaligned sizes round up to whole sections, first fit ascending. */
	b = alloc_in(test, SECTION_BYTES + PAGE_SIZE);
	KUNIT_ASSERT_FALSE(test, IS_ERR_OR_NULL(b));
	KUNIT_EXPECT_EQ(test, sec_off(test, b), 1);
	KUNIT_EXPECT_EQ(test, resource_size(b), 2 * SECTION_BYTES);
	c = alloc_in(test, SECTION_BYTES - 1);
	KUNIT_ASSERT_FALSE(test, IS_ERR_OR_NULL(c));
	KUNIT_EXPECT_EQ(test, sec_off(test, c), 3);
	KUNIT_EXPECT_EQ(test, resource_size(c), SECTION_BYTES);
	KUNIT_EXPECT_EQ(test, c->start % SECTION_BYTES, 0);

	__release_device_private_region(c);
	__release_device_private_region(b);
	__release_device_private_region(a);
}

static void devpriv_alloc_bad_input(struct kunit *test)
{
	struct resource *r;

	KUNIT_EXPECT_PTR_EQ(test, alloc_in(test, 0), ERR_PTR(-EINVAL));
	KUNIT_EXPECT_PTR_EQ(test, alloc_in(test, TEST_SECTIONS * SECTION_BYTES + 1),
			    ERR_PTR(-EINVAL));
	KUNIT_EXPECT_PTR_EQ(test, alloc_in(test, (resource_size_t)-1), ERR_PTR(-EINVAL));
	/* Exactly the whole root is fine. */
	r = alloc_in(test, TEST_SECTIONS * SECTION_BYTES);
	KUNIT_ASSERT_FALSE(test, IS_ERR_OR_NULL(r));
	KUNIT_EXPECT_EQ(test, sec_off(test, r), 0);
	__release_device_private_region(r);
}

static void devpriv_alloc_exhaustion(struct kunit *test)
{
	struct resource *r[TEST_SECTIONS], *x;
	int i;

	for (i = 0; i < TEST_SECTIONS; i++) {
		r[i] = alloc_in(test, SECTION_BYTES);
		KUNIT_ASSERT_FALSE(test, IS_ERR_OR_NULL(r[i]));
		KUNIT_EXPECT_EQ(test, sec_off(test, r[i]), i);
	}
	KUNIT_EXPECT_PTR_EQ(test, alloc_in(test, 1), ERR_PTR(-ENOSPC));

	/* A released range is handed out again. */
	__release_device_private_region(r[3]);
	x = alloc_in(test, 1);
	KUNIT_ASSERT_FALSE(test, IS_ERR_OR_NULL(x));
	KUNIT_EXPECT_EQ(test, sec_off(test, x), 3);
	r[3] = x;
	KUNIT_EXPECT_PTR_EQ(test, alloc_in(test, 1), ERR_PTR(-ENOSPC));

	for (i = 0; i < TEST_SECTIONS; i++)
		__release_device_private_region(r[i]);
	/* Empty again: the whole root fits. */
	x = alloc_in(test, TEST_SECTIONS * SECTION_BYTES);
	KUNIT_ASSERT_FALSE(test, IS_ERR_OR_NULL(x));
	__release_device_private_region(x);
}

static void devpriv_alloc_fragmentation(struct kunit *test)
{
	struct resource *r[TEST_SECTIONS], *x;
	int i;

	for (i = 0; i < TEST_SECTIONS; i++) {
		r[i] = alloc_in(test, SECTION_BYTES);
		KUNIT_ASSERT_FALSE(test, IS_ERR_OR_NULL(r[i]));
	}
	/* Free every other section: half the root is free, in 1-section holes. */
	for (i = 1; i < TEST_SECTIONS; i += 2) {
		__release_device_private_region(r[i]);
		r[i] = NULL;
	}
	KUNIT_EXPECT_PTR_EQ(test, alloc_in(test, 2 * SECTION_BYTES), ERR_PTR(-ENOSPC));
	/* Sections 4..5 become a 2-section hole, then 3..5 a 3-section one. */
	__release_device_private_region(r[4]);
	r[4] = NULL;
	x = alloc_in(test, 2 * SECTION_BYTES);
	KUNIT_ASSERT_FALSE(test, IS_ERR_OR_NULL(x));
	KUNIT_EXPECT_EQ(test, sec_off(test, x), 3);
	KUNIT_EXPECT_PTR_EQ(test, alloc_in(test, 2 * SECTION_BYTES), ERR_PTR(-ENOSPC));
	/* The 1-section holes still serve 1-section requests, lowest first. */
	r[1] = alloc_in(test, 1);
	KUNIT_ASSERT_FALSE(test, IS_ERR_OR_NULL(r[1]));
	KUNIT_EXPECT_EQ(test, sec_off(test, r[1]), 1);
	__release_device_private_region(x);

	for (i = 0; i < TEST_SECTIONS; i++)
		if (r[i])
			__release_device_private_region(r[i]);
}

/*
 * The space right after the ranges packed from the start of the root is taken
 * when it fits, the whole root is searched otherwise: the lowest free range
 * either way.
 */
static void devpriv_alloc_packed(struct kunit *test)
{
	struct devpriv_alloc_ctx *ctx = test->priv;
	struct resource *r[TEST_SECTIONS], *x;
	int i;

	for (i = 0; i < TEST_SECTIONS; i++) {
		r[i] = alloc_in(test, SECTION_BYTES);
		KUNIT_ASSERT_FALSE(test, IS_ERR_OR_NULL(r[i]));
	}
	KUNIT_EXPECT_PTR_EQ(test, ctx->root.packed, r[TEST_SECTIONS - 1]);

	/* A hole at section 2 ends the packed ranges at section 1 ... */
	__release_device_private_region(r[2]);
	r[2] = NULL;
	KUNIT_EXPECT_PTR_EQ(test, ctx->root.packed, r[1]);
	/* ... holes above it do not move it ... */
	__release_device_private_region(r[5]);
	__release_device_private_region(r[6]);
	r[5] = NULL;
	r[6] = NULL;
	KUNIT_EXPECT_PTR_EQ(test, ctx->root.packed, r[1]);
	/* ... a request larger than its hole gets the lowest hole that fits ... */
	r[5] = alloc_in(test, 2 * SECTION_BYTES);
	KUNIT_ASSERT_FALSE(test, IS_ERR_OR_NULL(r[5]));
	KUNIT_EXPECT_EQ(test, sec_off(test, r[5]), 5);
	KUNIT_EXPECT_PTR_EQ(test, ctx->root.packed, r[1]);
	/* ... one that fits its hole fills it ... */
	r[2] = alloc_in(test, 1);
	KUNIT_ASSERT_FALSE(test, IS_ERR_OR_NULL(r[2]));
	KUNIT_EXPECT_EQ(test, sec_off(test, r[2]), 2);
	KUNIT_EXPECT_PTR_EQ(test, ctx->root.packed, r[2]);
	/* ... and the next request finds the root packed to its end, and full. */
	KUNIT_EXPECT_PTR_EQ(test, alloc_in(test, 1), ERR_PTR(-ENOSPC));
	KUNIT_EXPECT_PTR_EQ(test, ctx->root.packed, r[TEST_SECTIONS - 1]);

	/* Without the first range nothing is packed; it is handed out again. */
	__release_device_private_region(r[0]);
	KUNIT_EXPECT_NULL(test, ctx->root.packed);
	r[0] = alloc_in(test, 1);
	KUNIT_ASSERT_FALSE(test, IS_ERR_OR_NULL(r[0]));
	KUNIT_EXPECT_EQ(test, sec_off(test, r[0]), 0);
	KUNIT_EXPECT_PTR_EQ(test, ctx->root.packed, r[0]);

	for (i = 0; i < TEST_SECTIONS; i++)
		if (r[i])
			__release_device_private_region(r[i]);
}

#define RANDOM_SECTIONS	64
#define RANDOM_STEPS	4000

/*
 * Random requests of 1 to 4 sections and random releases on a root of its
 * own: every range the allocator hands out must be the one that
 * allocate_resource(), which walks all ranges, gives on an identical root,
 * and every refusal a refusal there.
 */
static void devpriv_alloc_first_fit(struct kunit *test)
{
	struct resource **got, **ref, *ref_root;
	struct devpriv_region_root *root;
	unsigned int i, k, n = 0, refused = 0, diffs = 0;
	resource_size_t size;
	int ret;

	root = kunit_kzalloc(test, sizeof(*root), GFP_KERNEL);
	ref_root = kunit_kzalloc(test, sizeof(*ref_root), GFP_KERNEL);
	got = kunit_kcalloc(test, RANDOM_SECTIONS, sizeof(*got), GFP_KERNEL);
	ref = kunit_kcalloc(test, RANDOM_SECTIONS, sizeof(*ref), GFP_KERNEL);
	KUNIT_ASSERT_TRUE(test, root && ref_root && got && ref);
	root->res.start = 64 * SECTION_BYTES;
	root->res.end = root->res.start + RANDOM_SECTIONS * SECTION_BYTES - 1;
	root->res.flags = IORESOURCE_MEM;
	*ref_root = root->res;

	for (i = 0; i < RANDOM_STEPS; i++) {
		/* Release one in three steps, and always when full. */
		if (n && (n == RANDOM_SECTIONS || !get_random_u32_below(3))) {
			k = get_random_u32_below(n);
			__release_device_private_region(got[k]);
			release_resource(ref[k]);
			kfree(ref[k]);
			n--;
			got[k] = got[n];
			ref[k] = ref[n];
			continue;
		}
		size = (1 + get_random_u32_below(4)) * SECTION_BYTES;
		ref[n] = kzalloc_obj(*ref[n]);
		KUNIT_ASSERT_NOT_NULL(test, ref[n]);
		ret = allocate_resource(ref_root, ref[n], size, ref_root->start,
					ref_root->end, SECTION_BYTES, NULL, NULL);
		got[n] = __request_device_private_region(root, size, "devpriv_kunit");
		if (ret || IS_ERR(got[n])) {
			diffs += !ret != !IS_ERR(got[n]);
			refused += ret && IS_ERR(got[n]);
			if (!ret)
				release_resource(ref[n]);
			kfree(ref[n]);
			if (!IS_ERR(got[n]))
				__release_device_private_region(got[n]);
			continue;
		}
		diffs += got[n]->start - root->res.start !=
			 ref[n]->start - ref_root->start;
		n++;
	}
	while (n--) {
		__release_device_private_region(got[n]);
		release_resource(ref[n]);
		kfree(ref[n]);
	}
	KUNIT_EXPECT_EQ(test, diffs, 0);
	KUNIT_EXPECT_NULL(test, root->res.child);
	KUNIT_EXPECT_NULL(test, root->packed);
	kunit_info(test, "%d steps, %u requests refused by both, %u differences\n",
		   RANDOM_STEPS, refused, diffs);
}

#define ALLOC_THREADS	4
#define ALLOC_ROUNDS	200

struct alloc_thread {
	struct kunit *test;
	struct completion done;
	int id;
	int failures;
	int overlaps;
};

/* What every thread holds right now, to catch ranges handed out twice. */
static DEFINE_SPINLOCK(held_lock);
static struct resource *held[ALLOC_THREADS][2];

static bool ranges_overlap(struct resource *a, struct resource *b)
{
	return a->start <= b->end && b->start <= a->end;
}

static int hold(int id, struct resource *a, struct resource *b)
{
	int i, j, bad = 0;

	spin_lock(&held_lock);
	for (i = 0; a && i < ALLOC_THREADS; i++) {
		for (j = 0; j < 2 && i != id; j++) {
			if (!held[i][j])
				continue;
			bad += ranges_overlap(held[i][j], a);
			bad += ranges_overlap(held[i][j], b);
		}
	}
	held[id][0] = a;
	held[id][1] = b;
	spin_unlock(&held_lock);
	return bad;
}

/* Each thread holds two sections at a time: together they fill the root. */
static int alloc_thread_fn(void *arg)
{
	struct alloc_thread *t = arg;
	struct resource *a, *b;
	int i;

	for (i = 0; i < ALLOC_ROUNDS; i++) {
		a = alloc_in(t->test, SECTION_BYTES);
		b = alloc_in(t->test, SECTION_BYTES);
		if (IS_ERR_OR_NULL(a) || IS_ERR_OR_NULL(b)) {
			t->failures++;
		} else {
			t->overlaps += ranges_overlap(a, b);
			t->overlaps += hold(t->id, a, b);
			usleep_range(10, 20);
			hold(t->id, NULL, NULL);
		}
		if (!IS_ERR_OR_NULL(a))
			__release_device_private_region(a);
		if (!IS_ERR_OR_NULL(b))
			__release_device_private_region(b);
		cond_resched();
	}
	complete(&t->done);
	return 0;
}

static void devpriv_alloc_concurrent(struct kunit *test)
{
	struct alloc_thread *t;
	struct task_struct *task;
	int i, failures = 0, overlaps = 0;

	t = kunit_kcalloc(test, ALLOC_THREADS, sizeof(*t), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, t);
	for (i = 0; i < ALLOC_THREADS; i++) {
		t[i].test = test;
		t[i].id = i;
		init_completion(&t[i].done);
		task = kthread_run(alloc_thread_fn, &t[i], "devpriv_kunit/%d", i);
		KUNIT_ASSERT_FALSE(test, IS_ERR(task));
	}
	for (i = 0; i < ALLOC_THREADS; i++) {
		wait_for_completion(&t[i].done);
		failures += t[i].failures;
		overlaps += t[i].overlaps;
	}
	/* 4 threads x 2 sections = the 8 sections of the root: never short. */
	KUNIT_EXPECT_EQ(test, failures, 0);
	KUNIT_EXPECT_EQ(test, overlaps, 0);
}

static struct kunit_case devpriv_alloc_cases[] = {
	KUNIT_CASE(devpriv_alloc_alignment),
	KUNIT_CASE(devpriv_alloc_bad_input),
	KUNIT_CASE(devpriv_alloc_exhaustion),
	KUNIT_CASE(devpriv_alloc_fragmentation),
	KUNIT_CASE(devpriv_alloc_packed),
	KUNIT_CASE(devpriv_alloc_first_fit),
	KUNIT_CASE_SLOW(devpriv_alloc_concurrent),
	{}
};

static struct kunit_suite devpriv_alloc_suite = {
	.name = "devpriv_window_alloc",
	.init = devpriv_alloc_init,
	.exit = devpriv_alloc_exit,
	.test_cases = devpriv_alloc_cases,
};

kunit_test_suites(&devpriv_window_pfn_suite, &devpriv_entry_suite,
		  &devpriv_alloc_suite);

MODULE_DESCRIPTION("KUnit tests for the device private pfn window");
MODULE_LICENSE("GPL");
