// SPDX-License-Identifier: GPL-2.0
/*
 * Migration of anonymous memory to test_hmm's device-private memory and
 * back, and where the kernel places that memory.
 *
 * HMM_DMIRROR_DRIVER=rust_dmirror runs the tests against the Rust sample
 * samples/rust/rust_dmirror.rs instead, which implements the migration and
 * access ioctls of lib/test_hmm_uapi.h on one device; the tests that need
 * more of test_hmm (a second device, snapshots, device-exclusive entries,
 * allocation failures, chunk release) skip.
 *
 * Every migration is checked byte for byte.  The device pfns are read back
 * from the kernel through /proc/self/pagemap (a device-private page is a
 * non-present entry that carries its pfn) and checked against the ranges the
 * kernel reports for test_hmm in debugfs (device_private) or /proc/iomem.
 *
 * Needs the driver's module loaded (hmm_migrate.sh loads it), root and debugfs
 * mounted at /sys/kernel/debug.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/vfs.h>
#include <sys/wait.h>

#include "../kselftest_harness.h"
#include "dmirror.h"

#define DEVMEM_CHUNK_SIZE	(256UL << 20)
/* Memory section size (SECTION_SIZE_BITS), for the alignment checks. */
#if defined(__x86_64__) || defined(__riscv)
#define SECTION_SIZE		(128UL << 20)
#else
#define SECTION_SIZE		((unsigned long)page_size)	/* at least */
#endif
#define THP_SIZE		(2UL << 20)

/* /proc/pid/pagemap, Documentation/admin-guide/mm/pagemap.rst */
#define PM_PFRAME_MASK		((1ULL << 55) - 1)
#define PM_SWAP			0x4000000000000000ULL	/* bit 62 */
#define PM_PRESENT		0x8000000000000000ULL	/* bit 63 */
#define PM_SWP_TYPE_BITS	5

#define MAX_RANGES		256

/* The window and its ranges, in the format of /proc/iomem. */
#define DEVICE_PRIVATE_FILE	"/sys/kernel/debug/device_private"

struct range {
	__u64 start;
	__u64 end;	/* inclusive, as in /proc/iomem */
};

/* A mapping with a PROT_NONE guard page on each side. */
struct buf {
	char *ptr;
	size_t size;
	char *mirror;	/* what the device returns */
};

static size_t page_size;

/* A driver of the HMM_DMIRROR ioctls. */
struct dmirror_driver {
	const char *module;
	const char *dev[2];	/* device nodes; dev[1] NULL if only one */
	const char *range;	/* name of its device memory resources */
	bool full_abi;		/* SNAPSHOT, EXCLUSIVE, FLAGS, RELEASE */
};

static const struct dmirror_driver drivers[] = {
	{ "test_hmm", { "/dev/hmm_dmirror0", "/dev/hmm_dmirror1" },
	  "hmm_dmirror", true },
	{ "rust_dmirror", { "/dev/rust_dmirror", NULL }, "rust_dmirror", false },
};

static const struct dmirror_driver *drv = &drivers[0];

/*
 * Runs a range command of the dmirror device on [off, off + len) of @b (the
 * device side uses the same offset in b->mirror).  Returns the number of
 * pages the command processed (cmd.cpages), or -errno.
 */
static long dmirror_range(int fd, unsigned long req, struct buf *b,
			  size_t off, size_t len)
{
	struct hmm_dmirror_cmd cmd;
	int ret;

	ret = dmirror_ioctl(fd, req, b->ptr + off, b->mirror + off,
			    len / page_size, &cmd);
	return ret ? ret : (long)cmd.cpages;
}

static long to_device(int fd, struct buf *b, size_t off, size_t len)
{
	return dmirror_range(fd, HMM_DMIRROR_MIGRATE_TO_DEV, b, off, len);
}

static long to_system(int fd, struct buf *b, size_t off, size_t len)
{
	return dmirror_range(fd, HMM_DMIRROR_MIGRATE_TO_SYS, b, off, len);
}

/* Poisons the mirror first, so a short read cannot pass as data. */
static long dev_read(int fd, struct buf *b, size_t off, size_t len)
{
	memset(b->mirror + off, 0xa5, len);
	return dmirror_range(fd, HMM_DMIRROR_READ, b, off, len);
}

static long dev_write(int fd, struct buf *b, size_t off, size_t len)
{
	return dmirror_range(fd, HMM_DMIRROR_WRITE, b, off, len);
}

static int snapshot(int fd, void *addr, unsigned char *perm,
		    unsigned long npages)
{
	return dmirror_ioctl(fd, HMM_DMIRROR_SNAPSHOT, addr, perm, npages, NULL);
}

static int buf_alloc(struct buf *b, size_t size, size_t align)
{
	size_t total = size + align + 2 * page_size;
	char *p, *start;

	p = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	start = p + page_size;
	if (align)
		start = (char *)(((uintptr_t)start + align - 1) & ~(align - 1));
	if (mprotect(start, size, PROT_READ | PROT_WRITE))
		return -errno;
	b->ptr = start;
	b->size = size;
	b->mirror = malloc(size);
	return b->mirror ? 0 : -ENOMEM;
}

static void buf_free(struct buf *b)
{
	if (b->ptr)
		munmap(b->ptr, b->size);
	free(b->mirror);
	b->ptr = NULL;
	b->mirror = NULL;
}

static uint32_t pattern(uint32_t seed, size_t i)
{
	uint32_t x = (uint32_t)i * 2654435761u ^ seed;

	return x ^ (x >> 15);
}

static void fill(char *p, size_t len, uint32_t seed)
{
	uint32_t *w = (uint32_t *)p;
	size_t i;

	for (i = 0; i < len / 4; i++)
		w[i] = pattern(seed, i);
}

/* Offset of the first byte that differs from the pattern, or -1. */
static long check(const char *p, size_t len, uint32_t seed)
{
	const uint32_t *w = (const uint32_t *)p;
	size_t i;

	for (i = 0; i < len / 4; i++)
		if (w[i] != pattern(seed, i))
			return (long)(i * 4);
	return -1;
}

/* [p, p + len) holds bytes [off, off + len) of what fill() wrote. */
static long check_copy(const char *p, size_t off, size_t len, uint32_t seed)
{
	const uint32_t *w = (const uint32_t *)p;
	size_t i;

	for (i = 0; i < len / 4; i++)
		if (w[i] != pattern(seed, off / 4 + i))
			return (long)(off + i * 4);
	return -1;
}

/* Like check() on [off, off + len) of a buffer filled as a whole. */
static long check_part(const char *p, size_t off, size_t len, uint32_t seed)
{
	return check_copy(p + off, off, len, seed);
}

static long check_zero(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i])
			return (long)i;
	return -1;
}

static int pagemap_read(void *addr, __u64 *ent)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	off_t off = (uintptr_t)addr / page_size * sizeof(*ent);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = pread(fd, ent, sizeof(*ent), off);
	close(fd);
	return n == sizeof(*ent) ? 0 : -EIO;
}

/*
 * pfn of a non-present pagemap entry that carries one (device-private,
 * device-exclusive, migration): frame = type | pfn << 5.
 */
static bool pm_swap_pfn(__u64 ent, __u64 *pfn, unsigned int *type)
{
	__u64 frame = ent & PM_PFRAME_MASK;

	if ((ent & PM_PRESENT) || !(ent & PM_SWAP))
		return false;
	/*
	 * Which type numbers the kernel gives device private and migration
	 * entries is its own business (kernels with the window have more of
	 * them): callers check that the pfn is one of the device's.
	 */
	*type = frame & ((1U << PM_SWP_TYPE_BITS) - 1);
	*pfn = frame >> PM_SWP_TYPE_BITS;
	return true;
}

/* Lines "start-end : name" of a /proc/iomem style file. */
static int read_ranges(const char *path, const char *name, struct range *r,
		       int max)
{
	char line[256], nm[128];
	unsigned long long s, e;
	FILE *f = fopen(path, "r");
	int n = 0;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " %llx-%llx : %127[^\n]", &s, &e, nm) != 3)
			continue;
		if (strcmp(nm, name) || n == max)
			continue;
		r[n].start = s;
		r[n].end = e;
		n++;
	}
	fclose(f);
	return n;
}

/* The last address of System RAM in /proc/iomem, or 0 if it cannot be read. */
static __u64 ram_top(void)
{
	unsigned long long s, e, top = 0;
	char line[256], nm[128];
	FILE *f = fopen("/proc/iomem", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " %llx-%llx : %127[^\n]", &s, &e, nm) == 3 &&
		    !strcmp(nm, "System RAM") && e > top)
			top = e;
	fclose(f);
	return top;
}

static bool debugfs_mounted(void)
{
	struct statfs st;

	return !statfs("/sys/kernel/debug", &st) && st.f_type == DEBUGFS_MAGIC;
}

/* The driver's ranges as the kernel lists them, wherever they are. */
static int device_ranges(struct range *r, int max)
{
	int n = read_ranges(DEVICE_PRIVATE_FILE, drv->range, r, max);
	int m;

	if (n < 0)
		n = 0;
	m = read_ranges("/proc/iomem", drv->range, r + n, max - n);
	return n + (m > 0 ? m : 0);
}

static int range_of(__u64 phys, const struct range *r, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (phys >= r[i].start && phys <= r[i].end)
			return i;
	return -1;
}

#ifdef __x86_64__
/* Whether this process runs with 5-level page tables (la57). */
static bool five_level_paging(void)
{
	void *hint = (void *)(1UL << 50);
	void *p = mmap(hint, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	bool ret = p != MAP_FAILED && (uintptr_t)p >= (1UL << 47);

	if (p != MAP_FAILED)
		munmap(p, page_size);
	return ret;
}
#endif

/*
 * Checks that every page of [p, p + len) is a device-private entry whose
 * pfn lies in a range the kernel lists for test_hmm.  Returns the index of
 * the range of the first page, or -1 (and logs why).
 */
static int device_pages_in_ranges(struct __test_metadata *_metadata,
				  char *p, size_t len, size_t step)
{
	struct range r[MAX_RANGES];
	int n = device_ranges(r, MAX_RANGES), first = -1, idx;
	unsigned int type;
	__u64 ent, pfn;
	size_t off;

	for (off = 0; off < len; off += step) {
		if (pagemap_read(p + off, &ent)) {
			TH_LOG("pagemap read failed");
			return -1;
		}
		if (!pm_swap_pfn(ent, &pfn, &type)) {
			TH_LOG("offset %#zx: pagemap %#llx is no device entry",
			       off, ent);
			return -1;
		}
		idx = range_of(pfn * page_size, r, n);
		if (idx < 0) {
			TH_LOG("offset %#zx: pfn %#llx (type %u) in none of %d ranges",
			       off, pfn, type, n);
			return -1;
		}
		if (first < 0)
			first = idx;
	}
	return first;
}

static bool present_outside_ranges(char *p, size_t len)
{
	struct range r[MAX_RANGES];
	int n = device_ranges(r, MAX_RANGES);
	__u64 ent;
	size_t off;

	for (off = 0; off < len; off += page_size) {
		if (pagemap_read(p + off, &ent) || !(ent & PM_PRESENT))
			return false;
		if (range_of((ent & PM_PFRAME_MASK) * page_size, r, n) >= 0)
			return false;
	}
	return true;
}

static int run(const char *cmd)
{
	int st = system(cmd);

	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

FIXTURE(hmm) {
	int fd0;
	int fd1;
	struct buf b;
};

/* The driver the tests run against: HMM_DMIRROR_DRIVER, or test_hmm. */
static const struct dmirror_driver *find_driver(void)
{
	const char *name = getenv("HMM_DMIRROR_DRIVER");
	size_t i;

	if (!name || !*name)
		return &drivers[0];
	for (i = 0; i < ARRAY_SIZE(drivers); i++)
		if (!strcmp(name, drivers[i].module))
			return &drivers[i];
	return NULL;
}

FIXTURE_SETUP(hmm)
{
	page_size = sysconf(_SC_PAGESIZE);
	memset(&self->b, 0, sizeof(self->b));
	self->fd0 = -1;
	self->fd1 = -1;
	drv = find_driver();
	ASSERT_NE(drv, NULL) TH_LOG("unknown HMM_DMIRROR_DRIVER");
	self->fd0 = open(drv->dev[0], O_RDWR);
	if (self->fd0 < 0)
		SKIP(return, "%s: %s (modprobe %s)", drv->dev[0],
		     strerror(errno), drv->module);
	if (drv->dev[1]) {
		self->fd1 = open(drv->dev[1], O_RDWR);
		ASSERT_GE(self->fd1, 0);
	}
	if (geteuid())
		SKIP(return, "pagemap pfns need root");
}

/* Why the tests that need more of test_hmm skip on other drivers. */
#define NO_FULL_ABI "%s implements only the migration and access ioctls"

/* Reloads the driver's module and reopens its first device. */
static int reload_driver(int *fd)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "rmmod %s", drv->module);
	if (run(cmd))
		return -1;
	if (!access(drv->dev[0], F_OK))
		return -1;
	snprintf(cmd, sizeof(cmd), "modprobe %s", drv->module);
	if (run(cmd))
		return -1;
	*fd = open(drv->dev[0], O_RDWR);
	return *fd < 0 ? -1 : 0;
}

static bool driver_is_module(void)
{
	char path[80];

	snprintf(path, sizeof(path), "/sys/module/%s/refcnt", drv->module);
	return !access(path, F_OK);
}

FIXTURE_TEARDOWN(hmm)
{
	buf_free(&self->b);
	if (self->fd0 >= 0)
		close(self->fd0);
	if (self->fd1 >= 0)
		close(self->fd1);
}

/*
 * The pagemap decoding the other tests rely on: a migrated page shows up as
 * a non-present entry whose pfn lies inside a range the kernel lists for
 * test_hmm; after migrating back it is a present page outside those ranges.
 */
TEST_F(hmm, pagemap_decode)
{
	struct buf *b = &self->b;
	unsigned int type;
	__u64 ent, pfn;

	ASSERT_EQ(buf_alloc(b, page_size, 0), 0);
	fill(b->ptr, page_size, 1);
	ASSERT_EQ(pagemap_read(b->ptr, &ent), 0);
	ASSERT_TRUE(ent & PM_PRESENT);
	ASSERT_NE(ent & PM_PFRAME_MASK, 0) TH_LOG("pagemap hides pfns: not root?");

	ASSERT_EQ(to_device(self->fd0, b, 0, page_size), 1);
	ASSERT_EQ(pagemap_read(b->ptr, &ent), 0);
	ASSERT_TRUE(pm_swap_pfn(ent, &pfn, &type))
		TH_LOG("pagemap %#llx after migration", ent);
	TH_LOG("device page: pfn %#llx phys %#llx swap type %u",
	       pfn, pfn * page_size, type);
	ASSERT_GE(device_pages_in_ranges(_metadata, b->ptr, page_size,
					 page_size), 0);

	ASSERT_EQ(to_system(self->fd0, b, 0, page_size), 1);
	ASSERT_TRUE(present_outside_ranges(b->ptr, page_size));
	ASSERT_EQ(check(b->ptr, page_size, 1), -1);
}

/*
 * The series' point: device-private memory sits in the pfn window above all
 * physical memory (1 << MAX_PHYSMEM_BITS: 2^46 with 4-level, 2^52 with
 * 5-level paging on x86-64), not in the physical address space that memory
 * hotplug needs.  Elsewhere the test can only check that the window starts
 * above all System RAM: a kernel may claim the window's range in /proc/iomem
 * (x86-64 does when the CPU has more physical address bits than it maps).
 */
TEST_F(hmm, window_placement)
{
	__u64 min_start = ram_top() + 1;
	struct range win[2], r[MAX_RANGES];
	struct buf *b = &self->b;
	unsigned int type;
	__u64 ent, pfn;
	int n, i;

#ifdef __x86_64__
	/* 1 << MAX_PHYSMEM_BITS */
	if (min_start < (five_level_paging() ? 1ULL << 52 : 1ULL << 46))
		min_start = five_level_paging() ? 1ULL << 52 : 1ULL << 46;
#endif
	/*
	 * A kernel with the window lists it in debugfs, unless the
	 * architecture refused it on this machine (the boot log says why):
	 * then the file is empty and there is nothing to check here.
	 */
	if (access(DEVICE_PRIVATE_FILE, F_OK) && !debugfs_mounted())
		SKIP(return, "debugfs is not mounted at /sys/kernel/debug");
	if (!access(DEVICE_PRIVATE_FILE, F_OK) &&
	    !read_ranges(DEVICE_PRIVATE_FILE, "Device private memory", win, 2))
		SKIP(return, "the kernel did not enable the window on this machine");

	ASSERT_EQ(buf_alloc(b, page_size, 0), 0);
	fill(b->ptr, page_size, 2);
	ASSERT_EQ(to_device(self->fd0, b, 0, page_size), 1);
	ASSERT_EQ(pagemap_read(b->ptr, &ent), 0);
	ASSERT_TRUE(pm_swap_pfn(ent, &pfn, &type));
	TH_LOG("device page at phys %#llx, window must start at >= %#llx",
	       pfn * page_size, min_start);

	n = read_ranges("/proc/iomem", drv->range, r, MAX_RANGES);
	for (i = 0; i < n; i++)
		TH_LOG("/proc/iomem: %#llx-%#llx : %s",
		       r[i].start, r[i].end, drv->range);
	ASSERT_EQ(n, 0) TH_LOG("device-private memory takes physical address space");

	n = read_ranges(DEVICE_PRIVATE_FILE, "Device private memory", win, 2);
	ASSERT_EQ(n, 1) TH_LOG("no window in " DEVICE_PRIVATE_FILE " (%d)", n);
	TH_LOG("window %#llx-%#llx", win[0].start, win[0].end);
	ASSERT_GE(win[0].start, min_start);
	ASSERT_GT(win[0].end, win[0].start);

	n = read_ranges(DEVICE_PRIVATE_FILE, drv->range, r, MAX_RANGES);
	ASSERT_GE(n, drv->dev[1] ? 2 : 1) TH_LOG("expected a range per device");
	for (i = 0; i < n; i++) {
		ASSERT_GE(r[i].start, win[0].start);
		ASSERT_LE(r[i].end, win[0].end);
		ASSERT_EQ(r[i].start % SECTION_SIZE, 0);
		ASSERT_EQ((r[i].end + 1) % SECTION_SIZE, 0);
	}
	ASSERT_GE(pfn * page_size, win[0].start);
	ASSERT_LE(pfn * page_size, win[0].end);
	ASSERT_GE(range_of(pfn * page_size, r, n), 0);

	ASSERT_EQ(to_system(self->fd0, b, 0, page_size), 1);
	ASSERT_EQ(check(b->ptr, page_size, 2), -1);
}

TEST_F(hmm, one_page)
{
	struct buf *b = &self->b;
	unsigned char perm;

	ASSERT_EQ(buf_alloc(b, page_size, 0), 0);
	fill(b->ptr, page_size, 3);
	ASSERT_EQ(to_device(self->fd0, b, 0, page_size), 1);
	ASSERT_EQ(check(b->mirror, page_size, 3), -1);
	if (drv->full_abi) {
		ASSERT_EQ(snapshot(self->fd0, b->ptr, &perm, 1), 0);
		ASSERT_EQ(perm, HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL |
				HMM_DMIRROR_PROT_WRITE);
	}
	ASSERT_EQ(dev_read(self->fd0, b, 0, page_size), 1);
	ASSERT_EQ(check(b->mirror, page_size, 3), -1);
	ASSERT_EQ(to_system(self->fd0, b, 0, page_size), 1);
	ASSERT_EQ(check(b->ptr, page_size, 3), -1);
	ASSERT_TRUE(present_outside_ranges(b->ptr, page_size));
}

/* 64 pages; the device rewrites every other page while it holds them. */
TEST_F(hmm, multi_page)
{
	size_t npages = 64, size = npages * page_size, i;
	struct buf *b = &self->b;

	ASSERT_EQ(buf_alloc(b, size, 0), 0);
	fill(b->ptr, size, 4);
	ASSERT_EQ(to_device(self->fd0, b, 0, size), (long)npages);
	ASSERT_GE(device_pages_in_ranges(_metadata, b->ptr, size, page_size), 0);
	ASSERT_EQ(check(b->mirror, size, 4), -1);
	for (i = 0; i < npages; i += 2) {
		fill(b->mirror + i * page_size, page_size, 40 + i);
		ASSERT_EQ(dev_write(self->fd0, b, i * page_size, page_size), 1);
	}
	ASSERT_EQ(to_system(self->fd0, b, 0, size), (long)npages);
	for (i = 0; i < npages; i++) {
		long bad = i % 2 ? check_part(b->ptr, i * page_size, page_size, 4) :
				   check(b->ptr + i * page_size, page_size, 40 + i);

		ASSERT_EQ(bad, -1) TH_LOG("page %zu", i);
	}
}

/* A PMD-sized, PMD-aligned THP; a device THP keeps its pfns contiguous. */
TEST_F_TIMEOUT(hmm, thp, 120)
{
	size_t npages = THP_SIZE / page_size, i;
	struct buf *b = &self->b;
	__u64 ent, pfn0 = 0, pfn;
	unsigned int type;
	bool contiguous = true;

	ASSERT_EQ(buf_alloc(b, THP_SIZE, THP_SIZE), 0);
	madvise(b->ptr, THP_SIZE, MADV_HUGEPAGE);
	fill(b->ptr, THP_SIZE, 5);
	ASSERT_EQ(to_device(self->fd0, b, 0, THP_SIZE), (long)npages);
	ASSERT_EQ(check(b->mirror, THP_SIZE, 5), -1);
	ASSERT_GE(device_pages_in_ranges(_metadata, b->ptr, THP_SIZE, page_size), 0);
	for (i = 0; i < npages; i++) {
		ASSERT_EQ(pagemap_read(b->ptr + i * page_size, &ent), 0);
		ASSERT_TRUE(pm_swap_pfn(ent, &pfn, &type));
		if (i == 0)
			pfn0 = pfn;
		else if (pfn != pfn0 + i)
			contiguous = false;
	}
	TH_LOG("device pfns %s", contiguous ? "contiguous (device THP)" : "scattered");
	if (contiguous)
		ASSERT_EQ(pfn0 % npages, 0);
	/* Half comes back by CPU fault, half by the device. */
	ASSERT_EQ(check(b->ptr, THP_SIZE / 2, 5), -1);
	ASSERT_GE(to_system(self->fd0, b, 0, THP_SIZE), 0);
	ASSERT_EQ(check(b->ptr, THP_SIZE, 5), -1);
	ASSERT_TRUE(present_outside_ranges(b->ptr, THP_SIZE));
}

/*
 * Migrations that end exactly at a VMA edge, with PROT_NONE neighbours
 * (test_hmm treats the end of an invalidated range as inclusive, so the
 * neighbours must not be something it would tear down).
 */
TEST_F(hmm, region_edge)
{
	size_t npages = 16, size = npages * page_size;
	struct buf *b = &self->b;

	ASSERT_EQ(buf_alloc(b, size, 0), 0);
	fill(b->ptr, size, 6);
	/* Last page, then first page, then the rest. */
	ASSERT_EQ(to_device(self->fd0, b, size - page_size, page_size), 1);
	ASSERT_EQ(to_device(self->fd0, b, 0, page_size), 1);
	ASSERT_GE(device_pages_in_ranges(_metadata, b->ptr, page_size,
					 page_size), 0);
	ASSERT_GE(device_pages_in_ranges(_metadata, b->ptr + size - page_size,
					 page_size, page_size), 0);
	ASSERT_TRUE(present_outside_ranges(b->ptr + page_size,
					   size - 2 * page_size));
	ASSERT_EQ(to_device(self->fd0, b, 0, size), (long)npages);
	ASSERT_GE(device_pages_in_ranges(_metadata, b->ptr, size, page_size), 0);
	/* A range that runs into the guard page fails when it gets there. */
	ASSERT_LT(to_device(self->fd0, b, page_size, size), 0);
	ASSERT_EQ(check(b->ptr, size, 6), -1);
	ASSERT_TRUE(present_outside_ranges(b->ptr, size));
}

/*
 * Two devices hold the two halves, in ranges of their own; each sees its own
 * half as local device memory and cannot see the other's without a fault.
 */
TEST_F(hmm, two_devices)
{
	size_t npages = 32, size = npages * page_size, half = size / 2, i;
	struct buf *b = &self->b;
	unsigned char perm[32];
	int r0, r1;

	if (!drv->full_abi)
		SKIP(return, NO_FULL_ABI, drv->module);

	ASSERT_EQ(buf_alloc(b, size, 0), 0);
	fill(b->ptr, size, 7);
	ASSERT_EQ(to_device(self->fd0, b, 0, half), (long)npages / 2);
	ASSERT_EQ(to_device(self->fd1, b, half, half), (long)npages / 2);
	r0 = device_pages_in_ranges(_metadata, b->ptr, half, page_size);
	r1 = device_pages_in_ranges(_metadata, b->ptr + half, half, page_size);
	ASSERT_GE(r0, 0);
	ASSERT_GE(r1, 0);
	ASSERT_NE(r0, r1) TH_LOG("both devices' pages in one range");
	ASSERT_EQ(snapshot(self->fd0, b->ptr, perm, npages), 0);
	for (i = 0; i < npages; i++)
		ASSERT_EQ(perm[i], i < npages / 2 ?
			  (HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE) :
			  HMM_DMIRROR_PROT_NONE) TH_LOG("page %zu", i);
	ASSERT_EQ(snapshot(self->fd1, b->ptr, perm, npages), 0);
	for (i = 0; i < npages; i++)
		ASSERT_EQ(perm[i], i < npages / 2 ? HMM_DMIRROR_PROT_NONE :
			  (HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL | HMM_DMIRROR_PROT_WRITE))
			TH_LOG("page %zu", i);
	/* Device 0 reads device 1's half: that comes back to system memory. */
	ASSERT_EQ(dev_read(self->fd0, b, 0, size), (long)npages);
	ASSERT_EQ(check(b->mirror, size, 7), -1);
	ASSERT_TRUE(present_outside_ranges(b->ptr + half, half));
	ASSERT_EQ(to_system(self->fd0, b, 0, half), (long)npages / 2);
	ASSERT_EQ(check(b->ptr, size, 7), -1);
	ASSERT_TRUE(present_outside_ranges(b->ptr, size));
}

/* CPU reads and writes fault device pages back (migrate_to_ram). */
TEST_F(hmm, cpu_fault)
{
	size_t npages = 32, size = npages * page_size, i;
	struct buf *b = &self->b;

	ASSERT_EQ(buf_alloc(b, size, 0), 0);
	fill(b->ptr, size, 8);
	ASSERT_EQ(to_device(self->fd0, b, 0, size), (long)npages);
	/* Reads of the even pages, writes to the odd ones. */
	for (i = 0; i < npages; i += 2)
		ASSERT_EQ(check_part(b->ptr, i * page_size, page_size, 8), -1);
	for (i = 1; i < npages; i += 2)
		fill(b->ptr + i * page_size, page_size, 80 + i);
	ASSERT_TRUE(present_outside_ranges(b->ptr, size));
	ASSERT_EQ(dev_read(self->fd0, b, 0, size), (long)npages);
	for (i = 0; i < npages; i++) {
		long bad = i % 2 ? check(b->mirror + i * page_size, page_size, 80 + i) :
				   check_part(b->mirror, i * page_size, page_size, 8);

		ASSERT_EQ(bad, -1) TH_LOG("page %zu", i);
	}
	fill(b->ptr, size, 8);
	ASSERT_EQ(check(b->ptr, size, 8), -1);
}

/* fork() while the device holds the pages: both sides keep their data. */
TEST_F(hmm, fork_cow)
{
	size_t npages = 16, size = npages * page_size;
	struct buf *b = &self->b;
	int status;
	pid_t pid;

	ASSERT_EQ(buf_alloc(b, size, 0), 0);
	fill(b->ptr, size, 9);
	ASSERT_EQ(to_device(self->fd0, b, 0, size), (long)npages);

	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		/* The child sees the data, then writes its own copy. */
		if (check(b->ptr, size, 9) != -1)
			_exit(1);
		fill(b->ptr, size, 90);
		if (check(b->ptr, size, 90) != -1)
			_exit(2);
		_exit(0);
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(WEXITSTATUS(status), 0);

	ASSERT_EQ(check(b->ptr, size, 9), -1);
	ASSERT_EQ(dev_read(self->fd0, b, 0, size), (long)npages);
	ASSERT_EQ(check(b->mirror, size, 9), -1);
	/* A second round: the parent writes while a child only reads. */
	ASSERT_EQ(to_device(self->fd0, b, 0, size), (long)npages);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		usleep(100000);
		_exit(check(b->ptr, size, 9) == -1 ? 0 : 3);
	}
	fill(b->ptr, size, 91);
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_EQ(WEXITSTATUS(status), 0);
	ASSERT_EQ(check(b->ptr, size, 91), -1);
}

/*
 * mprotect, mremap, munmap and MADV_DONTNEED of device-backed ranges.
 *
 * The device only reads pages it got through migration or that are in
 * system memory: after an invalidation drops its mirror entry of a page it
 * holds, test_hmm's fault path maps the device-private struct page itself
 * and its read of it oopses (on any kernel).
 */
TEST_F(hmm, mprotect_device)
{
	size_t npages = 16, size = npages * page_size;
	struct buf *b = &self->b;

	ASSERT_EQ(buf_alloc(b, size, 0), 0);
	fill(b->ptr, size, 10);
	ASSERT_EQ(to_device(self->fd0, b, 0, size), (long)npages);
	ASSERT_EQ(mprotect(b->ptr, size, PROT_READ), 0);
	/* Read-only device-private entries, same pfns. */
	ASSERT_GE(device_pages_in_ranges(_metadata, b->ptr, size, page_size), 0);
	ASSERT_EQ(check(b->ptr, size, 10), -1);
	ASSERT_TRUE(present_outside_ranges(b->ptr, size));
	ASSERT_EQ(mprotect(b->ptr, size, PROT_READ | PROT_WRITE), 0);
	ASSERT_EQ(to_device(self->fd0, b, 0, size), (long)npages);
	ASSERT_EQ(mprotect(b->ptr, size, PROT_NONE), 0);
	ASSERT_EQ(mprotect(b->ptr, size, PROT_READ | PROT_WRITE), 0);
	ASSERT_GE(device_pages_in_ranges(_metadata, b->ptr, size, page_size), 0);
	ASSERT_GE(to_system(self->fd0, b, 0, size / 2), 0);
	ASSERT_EQ(check(b->ptr, size, 10), -1);
	ASSERT_TRUE(present_outside_ranges(b->ptr, size));
}

TEST_F(hmm, mremap_device)
{
	size_t npages = 16, size = npages * page_size;
	struct buf *b = &self->b;
	char *dst, *p;

	ASSERT_EQ(buf_alloc(b, size, 0), 0);
	fill(b->ptr, size, 11);
	ASSERT_EQ(to_device(self->fd0, b, 0, size), (long)npages);
	dst = mmap(NULL, 2 * size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(dst, MAP_FAILED);
	p = mremap(b->ptr, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, dst + page_size);
	ASSERT_EQ(p, dst + page_size);
	munmap(dst, page_size);
	munmap(dst + page_size + size, size - page_size);
	b->ptr = p;
	/* The entries moved with the mapping, still device pages. */
	ASSERT_GE(device_pages_in_ranges(_metadata, b->ptr, size, page_size), 0);
	/* The device migrates them back from the new address. */
	ASSERT_EQ(to_system(self->fd0, b, 0, size), (long)npages);
	ASSERT_TRUE(present_outside_ranges(b->ptr, size));
	ASSERT_EQ(check(b->ptr, size, 11), -1);
}

TEST_F(hmm, munmap_device)
{
	size_t npages = 64, size = npages * page_size, half = size / 2;
	struct buf *b = &self->b;

	ASSERT_EQ(buf_alloc(b, size, 0), 0);
	fill(b->ptr, size, 12);
	ASSERT_EQ(to_device(self->fd0, b, 0, size), (long)npages);
	/* Unmap the middle half: the two quarters left stay on the device. */
	ASSERT_EQ(munmap(b->ptr + half / 2, half), 0);
	ASSERT_GE(device_pages_in_ranges(_metadata, b->ptr, half / 2, page_size), 0);
	ASSERT_GE(device_pages_in_ranges(_metadata, b->ptr + half + half / 2,
					 half / 2, page_size), 0);
	ASSERT_EQ(check(b->ptr, half / 2, 12), -1);
	ASSERT_EQ(check_part(b->ptr, half + half / 2, half / 2, 12), -1);
	/* The hole can be mapped again and is fresh zero memory. */
	ASSERT_EQ(mmap(b->ptr + half / 2, half, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0),
		  b->ptr + half / 2);
	ASSERT_EQ(check_zero(b->ptr + half / 2, half), -1);
}

TEST_F(hmm, madv_dontneed_device)
{
	size_t npages = 32, size = npages * page_size;
	struct buf *b = &self->b;

	ASSERT_EQ(buf_alloc(b, size, 0), 0);
	fill(b->ptr, size, 13);
	ASSERT_EQ(to_device(self->fd0, b, 0, size), (long)npages);
	ASSERT_EQ(madvise(b->ptr, size / 2, MADV_DONTNEED), 0);
	ASSERT_GE(device_pages_in_ranges(_metadata, b->ptr + size / 2, size / 2,
					 page_size), 0);
	ASSERT_EQ(check_zero(b->ptr, size / 2), -1);
	/* Only the half in system memory (see mprotect_device). */
	ASSERT_EQ(dev_read(self->fd0, b, 0, size / 2), (long)npages / 2);
	ASSERT_EQ(check_zero(b->mirror, size / 2), -1);
	ASSERT_EQ(to_system(self->fd0, b, size / 2, size / 2), (long)npages / 2);
	ASSERT_EQ(check_part(b->ptr, size / 2, size / 2, 13), -1);
}

/*
 * Device-exclusive access: the CPU entry becomes non-present but keeps the
 * pfn of the system page (not a device page); a CPU write revokes it.
 */
TEST_F(hmm, device_exclusive)
{
	size_t npages = 16, size = npages * page_size;
	struct buf *b = &self->b;
	struct hmm_dmirror_cmd cmd;
	__u64 ent, pfn, ram_pfn;
	struct range r[MAX_RANGES];
	unsigned int type;
	int n, ret;

	if (!drv->full_abi)
		SKIP(return, NO_FULL_ABI, drv->module);

	ASSERT_EQ(buf_alloc(b, size, 0), 0);
	fill(b->ptr, size, 14);
	ASSERT_EQ(pagemap_read(b->ptr, &ent), 0);
	ram_pfn = ent & PM_PFRAME_MASK;
	ret = dmirror_ioctl(self->fd0, HMM_DMIRROR_EXCLUSIVE, b->ptr, b->mirror,
			    npages, &cmd);
	if (ret == -EOPNOTSUPP || ret == -EINVAL)
		SKIP(return, "device-exclusive not supported (%d)", ret);
	ASSERT_EQ(ret, 0);
	ASSERT_EQ(cmd.cpages, npages);
	ASSERT_EQ(check(b->mirror, size, 14), -1);
	/* HMM_DMIRROR_CHECK_EXCLUSIVE: -EPERM while the device has atomic access. */
	ASSERT_EQ(dmirror_ioctl(self->fd0, HMM_DMIRROR_CHECK_EXCLUSIVE, b->ptr,
				b->mirror, npages, NULL), -EPERM);
	ASSERT_EQ(pagemap_read(b->ptr, &ent), 0);
	ASSERT_TRUE(pm_swap_pfn(ent, &pfn, &type))
		TH_LOG("pagemap %#llx", ent);
	ASSERT_EQ(pfn, ram_pfn);
	n = device_ranges(r, MAX_RANGES);
	ASSERT_LT(range_of(pfn * page_size, r, n), 0);

	fill(b->ptr, size / 2, 140);
	ASSERT_EQ(pagemap_read(b->ptr, &ent), 0);
	ASSERT_TRUE(ent & PM_PRESENT);
	ASSERT_EQ(ent & PM_PFRAME_MASK, ram_pfn);
	ASSERT_EQ(dmirror_ioctl(self->fd0, HMM_DMIRROR_CHECK_EXCLUSIVE, b->ptr,
				b->mirror, npages / 2, NULL), 0);
	ASSERT_EQ(dmirror_ioctl(self->fd0, HMM_DMIRROR_CHECK_EXCLUSIVE,
				b->ptr + size / 2 + page_size, b->mirror,
				npages / 2 - 1, NULL), -EPERM);
	ASSERT_EQ(check(b->ptr, size / 2, 140), -1);
	ASSERT_EQ(dev_read(self->fd0, b, 0, size), (long)npages);
	ASSERT_EQ(check(b->mirror, size / 2, 140), -1);
}

/*
 * The device fails an allocation (HMM_DMIRROR_FLAG_FAIL_ALLOC fails the
 * next one): that page stays in system memory, the others move, and all
 * the data stays intact.
 */
TEST_F(hmm, device_alloc_fails)
{
	size_t npages = 16, size = npages * page_size;
	struct buf *b = &self->b;
	long moved;

	if (!drv->full_abi)
		SKIP(return, NO_FULL_ABI, drv->module);

	ASSERT_EQ(buf_alloc(b, size, 0), 0);
	fill(b->ptr, size, 15);
	ASSERT_EQ(dmirror_ioctl(self->fd0, HMM_DMIRROR_FLAGS, NULL, NULL,
				HMM_DMIRROR_FLAG_FAIL_ALLOC, NULL), 0);
	moved = to_device(self->fd0, b, 0, size);
	TH_LOG("migration with the first allocation failing: %ld", moved);
	ASSERT_TRUE(present_outside_ranges(b->ptr, page_size));
	ASSERT_GE(device_pages_in_ranges(_metadata, b->ptr + page_size,
					 size - page_size, page_size), 0);
	ASSERT_EQ(check(b->ptr, size, 15), -1);
	ASSERT_EQ(to_device(self->fd0, b, 0, size), (long)npages);
	ASSERT_EQ(to_system(self->fd0, b, 0, size), (long)npages);
	ASSERT_EQ(check(b->ptr, size, 15), -1);
}

/*
 * More than one 256 MiB chunk on one device: test_hmm registers another
 * device memory region, in a range of its own; then it releases them all
 * (HMM_DMIRROR_RELEASE evicts the pages to system memory) and registers
 * again on the next migration.  Migrates in steps to bound the memory the
 * bounce buffers take.
 */
TEST_F_TIMEOUT(hmm, more_regions, 600)
{
	size_t size = DEVMEM_CHUNK_SIZE + 4 * THP_SIZE, step = 16 * THP_SIZE, off;
	struct range before[MAX_RANGES], after[MAX_RANGES];
	struct buf *b = &self->b;
	char *full_mirror;
	int nb, na, i;
	long bad;

	if (!drv->full_abi)
		SKIP(return, NO_FULL_ABI, drv->module);

	/*
	 * Start from a device without memory, whatever earlier tests or
	 * programs left registered on it: the migration below then needs two
	 * new chunks.
	 */
	ASSERT_EQ(dmirror_ioctl(self->fd0, HMM_DMIRROR_RELEASE, NULL, NULL, 1,
				NULL), 0);
	nb = device_ranges(before, MAX_RANGES);
	ASSERT_EQ(buf_alloc(b, size, THP_SIZE), 0);
	full_mirror = b->mirror;
	b->mirror = malloc(step);
	free(full_mirror);
	ASSERT_NE(b->mirror, NULL);
	fill(b->ptr, size, 16);
	for (off = 0; off < size; off += step) {
		size_t len = size - off < step ? size - off : step;
		char *p = b->ptr + off;
		struct hmm_dmirror_cmd cmd;

		ASSERT_EQ(dmirror_ioctl(self->fd0, HMM_DMIRROR_MIGRATE_TO_DEV, p,
					b->mirror, len / page_size, &cmd), 0);
		ASSERT_EQ(cmd.cpages, len / page_size);
		/* The bounce buffer holds the device's copy of this step. */
		bad = check_copy(b->mirror, off, len, 16);
		ASSERT_EQ(bad, -1) TH_LOG("offset %#zx", off);
	}
	na = device_ranges(after, MAX_RANGES);
	TH_LOG("test_hmm ranges: %d before, %d after", nb, na);
	ASSERT_GE(na, nb + 2);
	for (i = 0; i < na; i++)
		ASSERT_EQ((after[i].end + 1 - after[i].start) % SECTION_SIZE, 0);
	ASSERT_GE(device_pages_in_ranges(_metadata, b->ptr, size, 509 * page_size), 0);

	/* Unregister this device's memory while it is in use. */
	ASSERT_EQ(dmirror_ioctl(self->fd0, HMM_DMIRROR_RELEASE, b->ptr, NULL, 1,
				NULL), 0);
	ASSERT_TRUE(present_outside_ranges(b->ptr, size));
	ASSERT_EQ(check(b->ptr, size, 16), -1);
	/* And register again on the next migration. */
	ASSERT_EQ(to_device(self->fd0, b, 0, 64 * page_size), 64);
	ASSERT_GE(device_pages_in_ranges(_metadata, b->ptr, 64 * page_size,
					 page_size), 0);
	ASSERT_EQ(check(b->ptr, size, 16), -1);
}

/*
 * Bad requests get a clean error and leave the memory as it was: unknown
 * commands, commands of the wrong size, bad user pointers, ranges that are
 * not (fully) mapped, unaligned, overflowing or far larger than the buffer.
 */
TEST_F(hmm, bad_input)
{
	size_t npages = 4, size = npages * page_size;
	struct buf *b = &self->b;
	struct hmm_dmirror_cmd cmd = { 0 };
	long ret;

	ASSERT_EQ(buf_alloc(b, size, 0), 0);
	fill(b->ptr, size, 19);

	ASSERT_EQ(ioctl(self->fd0, _IOWR('H', 0x7f, struct hmm_dmirror_cmd),
			&cmd), -1);
	ASSERT_EQ(ioctl(self->fd0, _IOWR('H', 0x02, int), &cmd), -1);
	ASSERT_EQ(ioctl(self->fd0, HMM_DMIRROR_MIGRATE_TO_DEV, (void *)8), -1);
	ASSERT_EQ(errno, EFAULT);
	ASSERT_EQ(dmirror_ioctl(self->fd0, HMM_DMIRROR_READ, b->ptr, (void *)8,
				npages, NULL), -EFAULT);
	ASSERT_EQ(dmirror_ioctl(self->fd0, HMM_DMIRROR_WRITE, b->ptr, (void *)8,
				npages, NULL), -EFAULT);

	/* Zero pages: an error or nothing done. */
	ret = dmirror_ioctl(self->fd0, HMM_DMIRROR_MIGRATE_TO_DEV, b->ptr,
			    b->mirror, 0, &cmd);
	ASSERT_TRUE(ret < 0 || cmd.cpages == 0) TH_LOG("zero pages: %ld", ret);
	ASSERT_EQ(dmirror_ioctl(self->fd0, HMM_DMIRROR_MIGRATE_TO_DEV,
				b->ptr + 1, b->mirror, 1, NULL), -EINVAL);
	ASSERT_EQ(dmirror_ioctl(self->fd0, HMM_DMIRROR_READ, b->ptr, b->mirror,
				~0UL / 2, NULL), -EINVAL);
	ASSERT_EQ(dmirror_ioctl(self->fd0, HMM_DMIRROR_MIGRATE_TO_DEV, NULL,
				b->mirror, 1, NULL), -EINVAL);
	/* Runs into the guard page after the buffer, and far beyond. */
	ASSERT_LT(to_device(self->fd0, b, 0, size + page_size), 0);
	ASSERT_LT(dmirror_ioctl(self->fd0, HMM_DMIRROR_MIGRATE_TO_DEV, b->ptr,
				b->mirror, 1UL << 20, NULL), 0);
	ASSERT_LT(dmirror_ioctl(self->fd0, HMM_DMIRROR_READ, b->ptr, b->mirror,
				npages + 1, NULL), 0);

	/* Whatever moved before the error comes back intact. */
	ASSERT_GE(to_system(self->fd0, b, 0, size), 0);
	ASSERT_EQ(check(b->ptr, size, 19), -1);
	ASSERT_TRUE(present_outside_ranges(b->ptr, size));
	ASSERT_EQ(to_device(self->fd0, b, 0, size), (long)npages);
	ASSERT_EQ(to_system(self->fd0, b, 0, size), (long)npages);
	ASSERT_EQ(check(b->ptr, size, 19), -1);
}

/*
 * Ranges at the top of the address space, where "start + size" and a
 * driver's per-chunk arithmetic come close to wrapping: every command fails
 * cleanly, with -EINVAL (the range wraps, or cannot be migrated) or -EFAULT
 * (nothing is mapped there), and the kernel survives: with Rust overflow
 * checks, an unchecked sum in a driver is a kernel panic.  test_hmm's
 * READ/WRITE give -EINVAL for the first range because its own per-chunk sum
 * wraps to 0 (dmirror_fault_unlocked()); rust_dmirror gives -EFAULT there.
 */
TEST_F(hmm, edge_addresses)
{
	static const unsigned long reqs[] = {
		HMM_DMIRROR_READ, HMM_DMIRROR_WRITE,
		HMM_DMIRROR_MIGRATE_TO_DEV, HMM_DMIRROR_MIGRATE_TO_SYS,
	};
	const struct {
		unsigned long addr;
		unsigned long npages;
	} ranges[] = {
		{ -(32UL * page_size), 1 },	/* 32 pages below the top */
		{ -(32UL * page_size), 32 },	/* up to the top exactly */
		{ -(2UL * page_size), 64 },	/* wraps around */
		{ -page_size, 1 },		/* the last page */
		{ -(1UL << 30), 64 },		/* 1 GiB below the top */
	};
	struct buf *b = &self->b;
	unsigned int i, j;

	ASSERT_EQ(buf_alloc(b, 64 * page_size, 0), 0);
	for (i = 0; i < ARRAY_SIZE(ranges); i++) {
		for (j = 0; j < ARRAY_SIZE(reqs); j++) {
			int ret = dmirror_ioctl(self->fd0, reqs[j],
						(void *)ranges[i].addr,
						b->mirror, ranges[i].npages,
						NULL);

			TH_LOG("request %u, addr %#lx, %lu pages: %d", j,
			       ranges[i].addr, ranges[i].npages, ret);
			EXPECT_TRUE(ret == -EINVAL || ret == -EFAULT);
		}
	}
}

/*
 * The module unloads while the device holds pages of a live process (its
 * file is closed, the mapping stays): the driver migrates them back to
 * system memory on the way out, and the data is intact.
 */
TEST_F_TIMEOUT(hmm, unload_with_device_pages, 120)
{
	size_t npages = 64, size = npages * page_size;
	struct buf *b = &self->b;

	if (!driver_is_module())
		SKIP(return, "%s is not a loaded module", drv->module);
	ASSERT_EQ(buf_alloc(b, size, 0), 0);
	fill(b->ptr, size, 20);
	ASSERT_EQ(to_device(self->fd0, b, 0, size), (long)npages);
	ASSERT_GE(device_pages_in_ranges(_metadata, b->ptr, size, page_size), 0);
	close(self->fd0);
	close(self->fd1);
	self->fd0 = -1;
	self->fd1 = -1;
	ASSERT_EQ(reload_driver(&self->fd0), 0);
	ASSERT_TRUE(present_outside_ranges(b->ptr, size));
	ASSERT_EQ(check(b->ptr, size, 20), -1);
	ASSERT_EQ(to_device(self->fd0, b, 0, size), (long)npages);
	ASSERT_EQ(check(b->mirror, size, 20), -1);
}

/*
 * A process exits while the device holds its pages; afterwards the module
 * unloads (every device page was freed) and loads again.  Runs last.
 */
TEST_F_TIMEOUT(hmm, exit_then_unload, 120)
{
	size_t npages = 256, size = npages * page_size;
	struct buf *b = &self->b;
	int status;
	pid_t pid;

	if (!driver_is_module())
		SKIP(return, "%s is not a loaded module", drv->module);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		/* The files belong to the mm that opened them. */
		int fd0 = open(drv->dev[0], O_RDWR);
		int fd1 = drv->dev[1] ? open(drv->dev[1], O_RDWR) : fd0;

		if (fd0 < 0 || fd1 < 0 || buf_alloc(b, size, 0))
			_exit(1);
		fill(b->ptr, size, 17);
		if (to_device(fd1, b, 0, size / 2) != (long)npages / 2)
			_exit(2);
		if (to_device(fd0, b, size / 2, size / 2) != (long)npages / 2)
			_exit(3);
		_exit(0);	/* pages and file still held */
	}
	ASSERT_EQ(waitpid(pid, &status, 0), pid);
	ASSERT_EQ(WEXITSTATUS(status), 0);
	close(self->fd0);
	close(self->fd1);
	self->fd0 = -1;
	self->fd1 = -1;
	ASSERT_EQ(reload_driver(&self->fd0), 0);
	ASSERT_EQ(buf_alloc(b, page_size, 0), 0);
	fill(b->ptr, page_size, 18);
	ASSERT_EQ(to_device(self->fd0, b, 0, page_size), 1);
	ASSERT_EQ(check(b->ptr, page_size, 18), -1);
}

TEST_HARNESS_MAIN
