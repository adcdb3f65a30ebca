// SPDX-License-Identifier: GPL-2.0
/*
 * devmem_bench: measure what placing MEMORY_DEVICE_PRIVATE memory costs, with
 * the legacy placement (request_free_mem_region() in iomem_resource) and with
 * the device private pfn window (request_device_private_region(), only when
 * the kernel has CONFIG_DEVICE_PRIVATE_PFN_WINDOW).
 *
 * Driven through debugfs: write one command to
 * /sys/kernel/debug/devmem_bench/run, read its result lines back from the
 * same file.  Every result line starts with "devmem_bench: " and is made of
 * key=value words.  Commands:
 *
 *   info
 *	sparsemem facts: sections, root array bytes, the window.
 *   reserve API COUNT SIZE
 *	COUNT reservations of SIZE bytes, every call timed, then all released.
 *   register API SIZE REPEATS
 *	REPEATS x (reserve, memremap_pages(), memunmap_pages(), release) of a
 *	MEMORY_DEVICE_PRIVATE range of SIZE bytes; each of the two calls timed.
 *   hold API SIZE
 *	reserve and memremap_pages() SIZE bytes and keep them (one at a time).
 *   migrate ADDR NPAGES
 *	migrate NPAGES anonymous pages of the writer's address space at ADDR
 *	into device pages of the held range, taken from its top end down.
 *	The CPU gets them back by faulting (migrate_to_ram).
 *   unhold
 *	memunmap_pages() and release the held range (waits for its pages).
 *   lookup NRANGES NLOOKUPS
 *	Model of a pfn-less design's per-page lookup on the held range: a
 *	maple tree from device page offset to one of NRANGES equal pagemaps,
 *	each with its own struct page array (here: its part of the memmap),
 *	timed against pfn_to_page()/page_to_pfn() of the same pages.
 *
 * API is "window" (request_device_private_region()), "legacy"
 * (request_free_mem_region(&iomem_resource, ...)) or, for reserve only,
 * "mtree" (a model of the O(log n) allocator the kernel's could have been:
 * mtree_alloc_range() in section units).  Bad input gives -EINVAL,
 * an API the kernel lacks -EOPNOTSUPP, a second hold -EBUSY, a range whose
 * memmap exceeds MemAvailable -ENOMEM.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/highmem.h>
#include <linux/ioport.h>
#include <linux/kernel.h>
#include <linux/ktime.h>
#include <linux/maple_tree.h>
#include <linux/memremap.h>
#include <linux/migrate.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pagemap.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#define BENCH_MAX_COUNT		100000UL
#define BENCH_MAX_REPEATS	32UL
#define BENCH_OUT_SIZE		(64 * 1024)
#define BENCH_MIGRATE_BATCH	32UL

enum bench_api { BENCH_LEGACY, BENCH_WINDOW, BENCH_MTREE };

/*
 * The held pagemap, with what a pfn-less design would keep per pagemap: the
 * device page offset of its first page and its struct page array.
 */
struct bench_pgmap {
	struct dev_pagemap pgmap;
	unsigned long dev_first;
	struct page *pages;
};

static DEFINE_MUTEX(bench_lock);
static struct dentry *bench_dir;
static char *bench_out;
static size_t bench_out_len;

/* The held range of "hold"/"migrate"/"unhold", under bench_lock. */
static struct dev_pagemap *hold_pgmap;
static struct resource *hold_res;
static enum bench_api hold_api;

/* Device page allocator of the held range, under page_lock. */
static DEFINE_SPINLOCK(page_lock);
static unsigned long next_pfn;		/* next unused pfn, counting down */
static unsigned long lowest_pfn, highest_pfn;
static struct page *free_dpages;		/* freed device pages */
static atomic_long_t faults;
static atomic_long_t pages_in_use;

static int bench_owner;			/* pgmap_owner: any unique address */

static __printf(1, 2) void out(const char *fmt, ...)
{
	va_list args;
	int n;

	if (bench_out_len >= BENCH_OUT_SIZE - 1)
		return;
	va_start(args, fmt);
	n = vscnprintf(bench_out + bench_out_len,
		       BENCH_OUT_SIZE - bench_out_len, fmt, args);
	va_end(args);
	pr_info("%s", bench_out + bench_out_len);
	bench_out_len += n;
}

static const char *api_name(enum bench_api api)
{
	return api == BENCH_WINDOW ? "window" :
	       api == BENCH_MTREE ? "mtree" : "legacy";
}

static int parse_api(const char *s, enum bench_api *api)
{
	if (!strcmp(s, "legacy")) {
		*api = BENCH_LEGACY;
		return 0;
	}
	if (!strcmp(s, "mtree")) {
		*api = BENCH_MTREE;
		return 0;
	}
	if (!strcmp(s, "window")) {
#ifdef CONFIG_DEVICE_PRIVATE_PFN_WINDOW
		*api = BENCH_WINDOW;
		return 0;
#else
		return -EOPNOTSUPP;
#endif
	}
	return -EINVAL;
}

/*
 * The "mtree" model allocator: the lowest free section-aligned range in a
 * window of 2^MAX_PHYSMEM_BITS bytes above 2^MAX_PHYSMEM_BITS, found with
 * mtree_alloc_range() in units of sections (so every range is section
 * aligned without an alignment search), the struct resource only carrying
 * start and end.  O(log n) in the live ranges, where allocate_resource()
 * walks the list of the root's children.
 */
static struct maple_tree model_mt = MTREE_INIT(model_mt, MT_FLAGS_ALLOC_RANGE);

static struct resource *model_request(unsigned long size)
{
	unsigned long min = 1UL << (MAX_PHYSMEM_BITS - PA_SECTION_SHIFT);
	unsigned long nsec = DIV_ROUND_UP(size, 1UL << PA_SECTION_SHIFT);
	unsigned long start;
	struct resource *res;
	int ret;

	res = kzalloc_obj(*res);
	if (!res)
		return ERR_PTR(-ENOMEM);
	ret = mtree_alloc_range(&model_mt, &start, res, nsec, min,
				2 * min - 1, GFP_KERNEL);
	if (ret) {
		kfree(res);
		return ERR_PTR(ret == -EBUSY ? -ENOSPC : ret);
	}
	res->start = (resource_size_t)start << PA_SECTION_SHIFT;
	res->end = res->start + ((resource_size_t)nsec << PA_SECTION_SHIFT) - 1;
	res->name = "devmem_bench";
	res->flags = IORESOURCE_MEM | IORESOURCE_BUSY;
	return res;
}

static void model_release(struct resource *res)
{
	mtree_erase(&model_mt, res->start >> PA_SECTION_SHIFT);
	kfree(res);
}

static struct resource *bench_request(enum bench_api api, unsigned long size)
{
	if (api == BENCH_MTREE)
		return model_request(size);
#ifdef CONFIG_DEVICE_PRIVATE_PFN_WINDOW
	if (api == BENCH_WINDOW)
		return request_device_private_region(size, "devmem_bench");
#endif
	return request_free_mem_region(&iomem_resource, size, "devmem_bench");
}

static void bench_release(enum bench_api api, struct resource *res)
{
	if (api == BENCH_MTREE) {
		model_release(res);
		return;
	}
#ifdef CONFIG_DEVICE_PRIVATE_PFN_WINDOW
	if (api == BENCH_WINDOW) {
		release_device_private_region(res);
		return;
	}
#endif
	release_mem_region(res->start, resource_size(res));
}

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

static u64 median(u64 *v, unsigned long n)
{
	sort(v, n, sizeof(*v), cmp_u64, NULL);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int cmd_info(void)
{
	unsigned long roots = NR_SECTION_ROOTS;

	out("devmem_bench: info max_physmem_bits=%d section_size_bits=%d nr_mem_sections=%lu sections_per_root=%lu nr_section_roots=%lu mem_section_root_bytes=%lu sizeof_mem_section=%zu sizeof_page=%zu la57=%d\n",
	    (int)MAX_PHYSMEM_BITS, SECTION_SIZE_BITS,
	    (unsigned long)NR_MEM_SECTIONS, (unsigned long)SECTIONS_PER_ROOT,
	    roots, roots * (unsigned long)sizeof(struct mem_section *),
	    sizeof(struct mem_section), sizeof(struct page),
	    pgtable_l5_enabled() ? 1 : 0);
#ifdef CONFIG_DEVICE_PRIVATE_PFN_WINDOW
	out("devmem_bench: window built=1 enabled=%d start_pfn=%#lx end_pfn=%#lx nr_phys_mem_sections=%lu window_root_bytes=%lu window_roots_allocated=%d\n",
	    devpriv_window_enabled() ? 1 : 0, (unsigned long)DEVPRIV_PFN_START,
	    (unsigned long)DEVPRIV_PFN_END,
	    (unsigned long)NR_PHYS_MEM_SECTIONS,
	    (unsigned long)(NR_DEVPRIV_SECTION_ROOTS * sizeof(struct mem_section *)),
	    READ_ONCE(devpriv_mem_section) ? 1 : 0);
#else
	out("devmem_bench: window built=0 enabled=0\n");
#endif
	return 0;
}

static int cmd_reserve(enum bench_api api, unsigned long count,
		       unsigned long size)
{
	struct resource **res;
	u64 *ns, total = 0, slowest = 0, t0;
	unsigned long i, done = 0;
	int ret = 0;

	if (!count || count > BENCH_MAX_COUNT || !size ||
	    !IS_ALIGNED(size, PAGES_PER_SECTION << PAGE_SHIFT))
		return -EINVAL;
	res = kvcalloc(count, sizeof(*res), GFP_KERNEL);
	ns = kvcalloc(count, sizeof(*ns), GFP_KERNEL);
	if (!res || !ns) {
		ret = -ENOMEM;
		goto free;
	}

	for (i = 0; i < count; i++) {
		t0 = ktime_get_ns();
		res[i] = bench_request(api, size);
		ns[i] = ktime_get_ns() - t0;
		if (IS_ERR(res[i])) {
			ret = PTR_ERR(res[i]);
			res[i] = NULL;
			break;
		}
		total += ns[i];
		slowest = max(slowest, ns[i]);
		done++;
	}

	out("devmem_bench: reserve api=%s count=%lu size=%lu done=%lu err=%d first_ns=%llu last_ns=%llu max_ns=%llu total_ns=%llu lowest=%#llx highest=%#llx\n",
	    api_name(api), count, size, done, ret, done ? ns[0] : 0,
	    done ? ns[done - 1] : 0, slowest, total,
	    done ? (u64)res[done - 1]->start : 0,
	    done ? (u64)res[0]->end : 0);
	/* Every call, ten per line. */
	for (i = 0; i < done; i += 10) {
		unsigned long j;
		char line[256];
		int n = 0;

		for (j = i; j < min(done, i + 10); j++)
			n += scnprintf(line + n, sizeof(line) - n, " %llu", ns[j]);
		out("devmem_bench: reserve_calls api=%s from=%lu ns=%s\n",
		    api_name(api), i + 1, line + 1);
	}

	for (i = done; i-- > 0;)
		bench_release(api, res[i]);
free:
	kvfree(ns);
	kvfree(res);
	return ret;
}

static void bench_folio_free(struct folio *folio)
{
	struct page *page = &folio->page;
	struct page *rpage = page->zone_device_data;

	if (rpage)
		__free_page(rpage);
	spin_lock(&page_lock);
	page->zone_device_data = free_dpages;
	free_dpages = page;
	spin_unlock(&page_lock);
	atomic_long_dec(&pages_in_use);
}

static vm_fault_t bench_migrate_to_ram(struct vm_fault *vmf)
{
	unsigned long src = 0, dst = 0;
	struct migrate_vma args = {
		.vma		= vmf->vma,
		.start		= vmf->address & PAGE_MASK,
		.end		= (vmf->address & PAGE_MASK) + PAGE_SIZE,
		.src		= &src,
		.dst		= &dst,
		.pgmap_owner	= &bench_owner,
		.flags		= MIGRATE_VMA_SELECT_DEVICE_PRIVATE,
		.fault_page	= vmf->page,
	};
	struct page *spage, *dpage;

	if (migrate_vma_setup(&args))
		return VM_FAULT_SIGBUS;
	spage = migrate_pfn_to_page(src);
	if (spage && (src & MIGRATE_PFN_MIGRATE)) {
		dpage = alloc_page_vma(GFP_HIGHUSER_MOVABLE, vmf->vma,
				       args.start);
		if (!dpage) {
			migrate_vma_finalize(&args);
			return VM_FAULT_OOM;
		}
		lock_page(dpage);
		copy_highpage(dpage, spage->zone_device_data);
		dst = migrate_pfn(page_to_pfn(dpage));
		if (src & MIGRATE_PFN_WRITE)
			dst |= MIGRATE_PFN_WRITE;
		atomic_long_inc(&faults);
	}
	migrate_vma_pages(&args);
	migrate_vma_finalize(&args);
	return 0;
}

static const struct dev_pagemap_ops bench_pgmap_ops = {
	.folio_free	= bench_folio_free,
	.migrate_to_ram	= bench_migrate_to_ram,
};

static struct dev_pagemap *bench_map(enum bench_api api, unsigned long size,
				     struct resource **resp, u64 *map_ns)
{
	struct dev_pagemap *pgmap;
	struct bench_pgmap *bp;
	struct resource *res;
	void *ptr;
	u64 t0;

	if (api == BENCH_MTREE)
		return ERR_PTR(-EINVAL);
	/*
	 * Refuse a range whose memmap cannot fit in the memory available now,
	 * rather than letting the vmemmap allocations run the guest out of
	 * memory.
	 */
	if ((size >> PAGE_SHIFT) > (si_mem_available() << PAGE_SHIFT) /
				   sizeof(struct page))
		return ERR_PTR(-ENOMEM);

	bp = kzalloc_obj(*bp);
	if (!bp)
		return ERR_PTR(-ENOMEM);
	pgmap = &bp->pgmap;
	res = bench_request(api, size);
	if (IS_ERR(res)) {
		kfree(bp);
		return ERR_CAST(res);
	}
	pgmap->type = MEMORY_DEVICE_PRIVATE;
	pgmap->range.start = res->start;
	pgmap->range.end = res->end;
	pgmap->nr_range = 1;
	pgmap->ops = &bench_pgmap_ops;
	pgmap->owner = &bench_owner;

	t0 = ktime_get_ns();
	ptr = memremap_pages(pgmap, numa_node_id());
	*map_ns = ktime_get_ns() - t0;
	if (IS_ERR(ptr)) {
		bench_release(api, res);
		kfree(bp);
		return ERR_CAST(ptr);
	}
	bp->dev_first = 0;
	bp->pages = pfn_to_page(PHYS_PFN(res->start));
	*resp = res;
	return pgmap;
}

static u64 bench_unmap(enum bench_api api, struct dev_pagemap *pgmap,
		       struct resource *res)
{
	u64 t0, ns;

	t0 = ktime_get_ns();
	memunmap_pages(pgmap);
	ns = ktime_get_ns() - t0;
	bench_release(api, res);
	kfree(container_of(pgmap, struct bench_pgmap, pgmap));
	return ns;
}

static int cmd_register(enum bench_api api, unsigned long size,
			unsigned long repeats)
{
	u64 reg[BENCH_MAX_REPEATS], unreg[BENCH_MAX_REPEATS];
	unsigned long i;
	char line[512];
	int n = 0;

	if (!size || !IS_ALIGNED(size, PAGES_PER_SECTION << PAGE_SHIFT) ||
	    !repeats || repeats > BENCH_MAX_REPEATS)
		return -EINVAL;

	for (i = 0; i < repeats; i++) {
		struct dev_pagemap *pgmap;
		struct resource *res;

		pgmap = bench_map(api, size, &res, &reg[i]);
		if (IS_ERR(pgmap)) {
			out("devmem_bench: register api=%s size=%lu err=%ld\n",
			    api_name(api), size, PTR_ERR(pgmap));
			return PTR_ERR(pgmap);
		}
		if (!i)
			out("devmem_bench: register_range api=%s start_pfn=%#llx end_pfn=%#llx\n",
			    api_name(api), (u64)PHYS_PFN(res->start),
			    (u64)PHYS_PFN(res->end + 1));
		unreg[i] = bench_unmap(api, pgmap, res);
		n += scnprintf(line + n, sizeof(line) - n, " %llu/%llu",
			       reg[i], unreg[i]);
	}
	out("devmem_bench: register_samples api=%s size=%lu reg/unreg_ns=%s\n",
	    api_name(api), size, line + 1);
	out("devmem_bench: register api=%s size=%lu repeats=%lu err=0 reg_median_ns=%llu unreg_median_ns=%llu\n",
	    api_name(api), size, repeats, median(reg, repeats),
	    median(unreg, repeats));
	return 0;
}

static int cmd_hold(enum bench_api api, unsigned long size)
{
	struct dev_pagemap *pgmap;
	struct resource *res;
	u64 ns;

	if (!size || !IS_ALIGNED(size, PAGES_PER_SECTION << PAGE_SHIFT))
		return -EINVAL;
	if (hold_pgmap)
		return -EBUSY;
	pgmap = bench_map(api, size, &res, &ns);
	if (IS_ERR(pgmap)) {
		out("devmem_bench: hold api=%s size=%lu err=%ld\n",
		    api_name(api), size, PTR_ERR(pgmap));
		return PTR_ERR(pgmap);
	}
	hold_pgmap = pgmap;
	hold_res = res;
	hold_api = api;
	spin_lock(&page_lock);
	free_dpages = NULL;
	next_pfn = PHYS_PFN(res->end + 1);
	lowest_pfn = ULONG_MAX;
	highest_pfn = 0;
	spin_unlock(&page_lock);
	atomic_long_set(&faults, 0);
	atomic_long_set(&pages_in_use, 0);
	out("devmem_bench: hold api=%s size=%lu err=0 start_pfn=%#llx end_pfn=%#llx reg_ns=%llu\n",
	    api_name(api), size, (u64)PHYS_PFN(res->start),
	    (u64)PHYS_PFN(res->end + 1), ns);
	return 0;
}

static struct page *bench_alloc_page(void)
{
	struct page *dpage = NULL, *rpage;
	unsigned long pfn;

	rpage = alloc_page(GFP_HIGHUSER);
	if (!rpage)
		return NULL;
	spin_lock(&page_lock);
	if (free_dpages) {
		dpage = free_dpages;
		free_dpages = dpage->zone_device_data;
	} else if (next_pfn > PHYS_PFN(hold_res->start)) {
		dpage = pfn_to_page(--next_pfn);
	}
	if (dpage) {
		pfn = page_to_pfn(dpage);
		lowest_pfn = min(lowest_pfn, pfn);
		highest_pfn = max(highest_pfn, pfn);
	}
	spin_unlock(&page_lock);
	if (!dpage) {
		__free_page(rpage);
		return NULL;
	}
	zone_device_page_init(dpage, hold_pgmap, 0);
	dpage->zone_device_data = rpage;
	atomic_long_inc(&pages_in_use);
	return dpage;
}

static int cmd_migrate(unsigned long addr, unsigned long npages)
{
	unsigned long src[BENCH_MIGRATE_BATCH], dst[BENCH_MIGRATE_BATCH];
	struct mm_struct *mm = current->mm;
	unsigned long end, next, i, migrated = 0;
	u64 t0 = ktime_get_ns();
	int ret = 0;

	if (!hold_pgmap)
		return -ENODEV;
	if (!mm || !npages || !PAGE_ALIGNED(addr) ||
	    npages > (ULONG_MAX - addr) >> PAGE_SHIFT)
		return -EINVAL;
	end = addr + (npages << PAGE_SHIFT);

	mmap_read_lock(mm);
	for (; addr < end; addr = next) {
		struct vm_area_struct *vma = vma_lookup(mm, addr);
		struct migrate_vma args = {};

		if (!vma || !vma_is_anonymous(vma)) {
			ret = -EINVAL;
			break;
		}
		next = min3(end, vma->vm_end,
			    addr + BENCH_MIGRATE_BATCH * PAGE_SIZE);
		memset(src, 0, sizeof(src));
		memset(dst, 0, sizeof(dst));
		args.vma = vma;
		args.start = addr;
		args.end = next;
		args.src = src;
		args.dst = dst;
		args.pgmap_owner = &bench_owner;
		args.flags = MIGRATE_VMA_SELECT_SYSTEM;
		ret = migrate_vma_setup(&args);
		if (ret)
			break;
		for (i = 0; i < args.npages; i++) {
			struct page *spage = migrate_pfn_to_page(src[i]);
			struct page *dpage;

			if (!(src[i] & MIGRATE_PFN_MIGRATE))
				continue;
			dpage = bench_alloc_page();
			if (!dpage)
				break;
			if (spage)
				copy_highpage(dpage->zone_device_data, spage);
			else
				clear_highpage(dpage->zone_device_data);
			dst[i] = migrate_pfn(page_to_pfn(dpage));
			if ((src[i] & MIGRATE_PFN_WRITE) ||
			    (!spage && (vma->vm_flags & VM_WRITE)))
				dst[i] |= MIGRATE_PFN_WRITE;
		}
		migrate_vma_pages(&args);
		for (i = 0; i < args.npages; i++)
			if (dst[i] && (src[i] & MIGRATE_PFN_MIGRATE))
				migrated++;
		migrate_vma_finalize(&args);
	}
	mmap_read_unlock(mm);

	spin_lock(&page_lock);
	out("devmem_bench: migrate npages=%lu migrated=%lu err=%d ns=%llu lowest_pfn=%#lx highest_pfn=%#lx range_start_pfn=%#llx range_end_pfn=%#llx in_use=%ld faults=%ld\n",
	    npages, migrated, ret, ktime_get_ns() - t0,
	    lowest_pfn == ULONG_MAX ? 0 : lowest_pfn, highest_pfn,
	    (u64)PHYS_PFN(hold_res->start), (u64)PHYS_PFN(hold_res->end + 1),
	    atomic_long_read(&pages_in_use), atomic_long_read(&faults));
	spin_unlock(&page_lock);
	return ret;
}

static int cmd_unhold(void)
{
	long faulted, in_use;
	u64 ns;

	if (!hold_pgmap)
		return -ENODEV;
	faulted = atomic_long_read(&faults);
	in_use = atomic_long_read(&pages_in_use);
	ns = bench_unmap(hold_api, hold_pgmap, hold_res);
	hold_pgmap = NULL;
	hold_res = NULL;
	out("devmem_bench: unhold api=%s faults=%ld in_use_before=%ld unreg_ns=%llu\n",
	    api_name(hold_api), faulted, in_use, ns);
	return 0;
}

/*
 * "lookup": the per-page lookup a pfn-less device private design would do
 * (device page offset -> struct page through a maple tree of pagemaps, and
 * struct page -> offset through page_pgmap()), against pfn_to_page() and
 * page_to_pfn() of the same pages.  Each loop runs over the same
 * LOOKUP_SET pseudo-random pages of the held range; barrier() keeps the
 * compiler from hoisting loads (vmemmap_base, the tree root) out of the
 * loop, as they would be reloaded at every call site in the kernel.  The
 * loop overhead (reading the index or page array) is timed separately and
 * subtracted.
 */
#define LOOKUP_SET	4096

/* Every loop's result ends here, so that none is optimized away. */
static unsigned long lk_sink;

struct lk_pm {
	unsigned long first;	/* device page offset of pages[0] */
	struct page *pages;
};

static noinline unsigned long lk_idx_loop(const u32 *idx, unsigned long reps)
{
	unsigned long sum = 0, r, j;

	for (r = 0; r < reps; r++)
		for (j = 0; j < LOOKUP_SET; j++) {
			sum += idx[j];
			barrier();
		}
	return sum;
}

static noinline unsigned long lk_pfn_to_page(const u32 *idx, unsigned long reps,
					     unsigned long start_pfn)
{
	unsigned long sum = 0, r, j;

	for (r = 0; r < reps; r++)
		for (j = 0; j < LOOKUP_SET; j++) {
			sum += (unsigned long)pfn_to_page(start_pfn + idx[j]);
			barrier();
		}
	return sum;
}

static noinline unsigned long lk_mt_load(const u32 *idx, unsigned long reps,
					 struct maple_tree *mt)
{
	unsigned long sum = 0, r, j;

	for (r = 0; r < reps; r++)
		for (j = 0; j < LOOKUP_SET; j++) {
			unsigned long off = idx[j];
			struct lk_pm *pm = mtree_load(mt, off);

			sum += (unsigned long)(pm->pages + (off - pm->first));
			barrier();
		}
	return sum;
}

static noinline unsigned long lk_page_loop(struct page **pages,
					   unsigned long reps)
{
	unsigned long sum = 0, r, j;

	for (r = 0; r < reps; r++)
		for (j = 0; j < LOOKUP_SET; j++) {
			sum += (unsigned long)pages[j];
			barrier();
		}
	return sum;
}

static noinline unsigned long lk_page_to_pfn(struct page **pages,
					     unsigned long reps)
{
	unsigned long sum = 0, r, j;

	for (r = 0; r < reps; r++)
		for (j = 0; j < LOOKUP_SET; j++) {
			sum += page_to_pfn(pages[j]);
			barrier();
		}
	return sum;
}

static noinline unsigned long lk_page_to_off(struct page **pages,
					     unsigned long reps)
{
	unsigned long sum = 0, r, j;

	for (r = 0; r < reps; r++)
		for (j = 0; j < LOOKUP_SET; j++) {
			struct page *page = pages[j];
			struct bench_pgmap *bp = container_of(page_pgmap(page),
						struct bench_pgmap, pgmap);

			sum += bp->dev_first + (page - bp->pages);
			barrier();
		}
	return sum;
}

static int cmd_lookup(unsigned long nranges, unsigned long nlookups)
{
	struct maple_tree mt = MTREE_INIT(mt, 0);
	unsigned long start_pfn, npages, chunk, reps, i;
	u64 t[6], sum[6], x = 0x9e3779b97f4a7c15ULL;
	struct page **pages = NULL;
	struct lk_pm *pms = NULL;
	u32 *idx = NULL;
	int ret = 0;

	if (!hold_pgmap)
		return -ENODEV;
	start_pfn = PHYS_PFN(hold_res->start);
	npages = PHYS_PFN(resource_size(hold_res));
	if (!nranges || nranges > npages || npages > U32_MAX ||
	    nlookups < LOOKUP_SET || nlookups > (1UL << 32))
		return -EINVAL;
	reps = nlookups / LOOKUP_SET;
	chunk = npages / nranges;

	idx = kvmalloc_array(LOOKUP_SET, sizeof(*idx), GFP_KERNEL);
	pages = kvmalloc_array(LOOKUP_SET, sizeof(*pages), GFP_KERNEL);
	pms = kvmalloc_array(nranges, sizeof(*pms), GFP_KERNEL);
	if (!idx || !pages || !pms) {
		ret = -ENOMEM;
		goto free;
	}
	for (i = 0; i < nranges; i++) {
		unsigned long last = i == nranges - 1 ? npages - 1 :
				     (i + 1) * chunk - 1;

		pms[i].first = i * chunk;
		pms[i].pages = pfn_to_page(start_pfn + i * chunk);
		ret = mtree_store_range(&mt, i * chunk, last, &pms[i],
					GFP_KERNEL);
		if (ret)
			goto free;
	}
	for (i = 0; i < LOOKUP_SET; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		idx[i] = x % npages;
		pages[i] = pfn_to_page(start_pfn + idx[i]);
	}
	/* The model must find the same pages as the memmap. */
	for (i = 0; i < LOOKUP_SET; i++) {
		struct lk_pm *pm = mtree_load(&mt, idx[i]);

		if (!pm || pm->pages + (idx[i] - pm->first) != pages[i] ||
		    page_to_pfn(pages[i]) - start_pfn != idx[i]) {
			ret = -EIO;
			goto free;
		}
	}

#define LK_TIME(n, expr) do { u64 _t0 = ktime_get_ns();	\
		sum[n] = (expr);				\
		t[n] = ktime_get_ns() - _t0; } while (0)
	LK_TIME(0, lk_idx_loop(idx, reps));
	LK_TIME(1, lk_pfn_to_page(idx, reps, start_pfn));
	LK_TIME(2, lk_mt_load(idx, reps, &mt));
	LK_TIME(3, lk_page_loop(pages, reps));
	LK_TIME(4, lk_page_to_pfn(pages, reps));
	LK_TIME(5, lk_page_to_off(pages, reps));
#undef LK_TIME
	/* Same pages found by both: the sums of the pointers agree. */
	if (sum[1] != sum[2])
		ret = -EIO;
	WRITE_ONCE(lk_sink, sum[0] ^ sum[1] ^ sum[2] ^ sum[3] ^ sum[4] ^ sum[5]);
	nlookups = reps * LOOKUP_SET;
	out("devmem_bench: lookup nranges=%lu pages=%lu range_pages=%lu nlookups=%lu err=%d idx_loop_ns=%llu pfn_to_page_ns=%llu mtree_ns=%llu page_loop_ns=%llu page_to_pfn_ns=%llu page_to_off_ns=%llu pfn_to_page_ps=%llu mtree_ps=%llu page_to_pfn_ps=%llu page_to_off_ps=%llu\n",
	    nranges, npages, chunk, nlookups, ret, t[0], t[1], t[2], t[3],
	    t[4], t[5],
	    div64_u64((t[1] - min(t[1], t[0])) * 1000, nlookups),
	    div64_u64((t[2] - min(t[2], t[0])) * 1000, nlookups),
	    div64_u64((t[4] - min(t[4], t[3])) * 1000, nlookups),
	    div64_u64((t[5] - min(t[5], t[3])) * 1000, nlookups));
free:
	mtree_destroy(&mt);
	kvfree(pms);
	kvfree(pages);
	kvfree(idx);
	return ret;
}

static int bench_run(char *buf)
{
	char *argv[4];
	unsigned long a = 0, b = 0;
	enum bench_api api;
	int argc = 0, ret;
	char *p;

	while ((p = strsep(&buf, " \t\n")) != NULL) {
		if (!*p)
			continue;
		if (argc == ARRAY_SIZE(argv))
			return -EINVAL;
		argv[argc++] = p;
	}
	if (!argc)
		return -EINVAL;

	if (!strcmp(argv[0], "info") && argc == 1)
		return cmd_info();
	if (!strcmp(argv[0], "unhold") && argc == 1)
		return cmd_unhold();
	if (!strcmp(argv[0], "lookup") && argc == 3) {
		if (kstrtoul(argv[1], 0, &a) || kstrtoul(argv[2], 0, &b))
			return -EINVAL;
		return cmd_lookup(a, b);
	}
	if (!strcmp(argv[0], "migrate") && argc == 3) {
		if (kstrtoul(argv[1], 0, &a) || kstrtoul(argv[2], 0, &b))
			return -EINVAL;
		return cmd_migrate(a, b);
	}
	if (argc < 3)
		return -EINVAL;
	ret = parse_api(argv[1], &api);
	if (ret)
		return ret;
	if (kstrtoul(argv[2], 0, &a))
		return -EINVAL;
	if (!strcmp(argv[0], "hold") && argc == 3)
		return cmd_hold(api, a);
	if (argc != 4 || kstrtoul(argv[3], 0, &b))
		return -EINVAL;
	if (!strcmp(argv[0], "reserve"))
		return cmd_reserve(api, b, a);
	if (!strcmp(argv[0], "register"))
		return cmd_register(api, a, b);
	return -EINVAL;
}

static ssize_t bench_write(struct file *file, const char __user *ubuf,
			   size_t len, loff_t *ppos)
{
	char *buf;
	int ret;

	if (!len || len > 255)
		return -EINVAL;
	buf = memdup_user_nul(ubuf, len);
	if (IS_ERR(buf))
		return PTR_ERR(buf);
	mutex_lock(&bench_lock);
	bench_out_len = 0;
	bench_out[0] = '\0';
	ret = bench_run(buf);
	mutex_unlock(&bench_lock);
	kfree(buf);
	return ret ? ret : len;
}

static ssize_t bench_read(struct file *file, char __user *ubuf, size_t len,
			  loff_t *ppos)
{
	ssize_t ret;

	mutex_lock(&bench_lock);
	ret = simple_read_from_buffer(ubuf, len, ppos, bench_out,
				      bench_out_len);
	mutex_unlock(&bench_lock);
	return ret;
}

static const struct file_operations bench_fops = {
	.owner	= THIS_MODULE,
	.read	= bench_read,
	.write	= bench_write,
	.llseek	= default_llseek,
};

static int __init devmem_bench_init(void)
{
	bench_out = kvzalloc(BENCH_OUT_SIZE, GFP_KERNEL);
	if (!bench_out)
		return -ENOMEM;
	bench_dir = debugfs_create_dir("devmem_bench", NULL);
	debugfs_create_file("run", 0600, bench_dir, NULL, &bench_fops);
	return 0;
}

static void __exit devmem_bench_exit(void)
{
	debugfs_remove_recursive(bench_dir);
	mutex_lock(&bench_lock);
	if (hold_pgmap)
		cmd_unhold();
	mutex_unlock(&bench_lock);
	kvfree(bench_out);
}

module_init(devmem_bench_init);
module_exit(devmem_bench_exit);
MODULE_DESCRIPTION("Benchmark of device private memory placement");
MODULE_LICENSE("GPL");
#ifdef CONFIG_DEVICE_PRIVATE_PFN_WINDOW
/* devpriv_mem_section: whether the window's section roots are allocated. */
MODULE_IMPORT_NS("EXPORTED_FOR_KUNIT_TESTING");
#endif
