// SPDX-License-Identifier: GPL-2.0
/*
 * Whether page migration keeps the young (accessed) bit of a PTE, seen from
 * userspace: the kernel's swap_migration_ad_supported, which decides
 * migration_entry_supports_ad().  For scripts/guest/l1tf.sh; needs root and
 * idle page tracking.
 *
 *   mig_ad [auto|move|compact]
 *
 * Marking a page idle in /sys/kernel/mm/page_idle/bitmap clears its PTE
 * young bit and sets PG_idle.  Touching it again sets the young bit, PG_idle
 * stays.  Reading the bitmap reports "idle" only when PG_idle is set and no
 * PTE is young.  So a page marked idle, touched and migrated reads "not
 * idle" when the migration entry kept the young bit, and "idle" when the
 * new PTE was made old.
 *
 * move:    move_pages(2) to another NUMA node (numa=fake=2), one page per
 *          case: touched but not migrated (must read not idle: the touch
 *          sets the bit), untouched and migrated (must read idle), touched
 *          and migrated (the answer).
 * compact: the same on NCOMPACT pages, half of them touched, migrated by
 *          /proc/sys/vm/compact_memory; only the pages that moved count.
 *          For kernels without move_pages (CONFIG_NUMA_MIGRATION=n).
 * auto:    move when move_pages exists and there are two nodes, else
 *          compact (the default).
 *
 * Prints KTAP-ish lines and last 'mig_ad: young bit kept across migration:
 * yes|no'.  Exit 0 when the method worked (pages moved, controls right), 4
 * (skip) without page_idle or without a way to migrate (move: one node, no
 * move_pages), 1 on any error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#ifndef MPOL_F_NODE
#define MPOL_F_NODE		(1 << 0)
#define MPOL_F_ADDR		(1 << 1)
#define MPOL_F_MEMS_ALLOWED	(1 << 2)
#endif
#ifndef MPOL_MF_MOVE
#define MPOL_MF_MOVE		(1 << 1)
#endif
#ifndef MADV_COLD
#define MADV_COLD		20
#endif

#define IDLE_BITMAP	"/sys/kernel/mm/page_idle/bitmap"
#define COMPACT		"/proc/sys/vm/compact_memory"
#define PM_PRESENT	(1ULL << 63)
#define PM_PFRAME	((1ULL << 55) - 1)
#define MAX_NODES	1024
#define NCOMPACT	4096
#define KSFT_SKIP	4

static long psz;
static int pagemap_fd = -1, idle_fd = -1;
static void *dummy;
static int tn, tpass, tfail;

static long sys_get_mempolicy(int *mode, unsigned long *nmask,
			      unsigned long maxnode, void *addr,
			      unsigned long flags)
{
	return syscall(SYS_get_mempolicy, mode, nmask, maxnode, addr, flags);
}

static long sys_move_pages(unsigned long count, void **pages,
			   const int *nodes, int *status, int flags)
{
	return syscall(SYS_move_pages, 0, count, pages, nodes, status, flags);
}

static void result(int pass, const char *name)
{
	tn++;
	if (pass)
		tpass++;
	else
		tfail++;
	printf("%sok %d %s\n", pass ? "" : "not ", tn, name);
}

/* The pfn mapped at addr, 0 with a message when there is none. */
static uint64_t page_pfn(void *addr)
{
	uint64_t ent;
	off_t off = (uintptr_t)addr / psz * sizeof(ent);
	ssize_t n = pread(pagemap_fd, &ent, sizeof(ent), off);

	if (n != sizeof(ent)) {
		printf("# error: pread /proc/self/pagemap: %s\n",
		       n < 0 ? strerror(errno) : "short read");
		return 0;
	}
	if (!(ent & PM_PRESENT)) {
		printf("# error: page %p not present (pagemap 0x%llx)\n",
		       addr, (unsigned long long)ent);
		return 0;
	}
	if (!(ent & PM_PFRAME)) {
		printf("# error: pagemap shows pfn 0 (not root?)\n");
		return 0;
	}
	return ent & PM_PFRAME;
}

/* Idle bit of pfn: 0 or 1, -1 on error.  Reading clears PTE young bits. */
static int idle_get(uint64_t pfn)
{
	/*
	 * mm/page_idle.c fills the last, partial 64-pfn word below max_pfn
	 * but does not count it in the read's length: a pattern it
	 * overwrote tells that the word was filled (it starts each word at 0).
	 */
	const uint64_t unread = 0xa5a5a5a5a5a5a5a5ULL;
	uint64_t word = unread;
	ssize_t n = pread(idle_fd, &word, sizeof(word), pfn / 64 * 8);

	if (n == 0 && word != unread)
		n = sizeof(word);
	if (n != sizeof(word)) {
		printf("# error: pread %s at pfn 0x%llx: %s\n", IDLE_BITMAP,
		       (unsigned long long)pfn,
		       n < 0 ? strerror(errno) : "short read");
		return -1;
	}
	return !!(word & (1ULL << (pfn % 64)));
}

static int idle_set(uint64_t pfn)
{
	uint64_t word = 1ULL << (pfn % 64);
	ssize_t n = pwrite(idle_fd, &word, sizeof(word), pfn / 64 * 8);

	if (n != sizeof(word)) {
		printf("# error: pwrite %s at pfn 0x%llx: %s\n", IDLE_BITMAP,
		       (unsigned long long)pfn,
		       n < 0 ? strerror(errno) : "short write");
		return -1;
	}
	return 0;
}

/*
 * Clearing the young bit does not flush the TLB on x86: flush it (mprotect
 * does, and keeps the young bit) so that a touch walks the page table and
 * sets the bit again.
 */
static int flush_tlb(void *addr, size_t len)
{
	if (mprotect(addr, len, PROT_NONE) ||
	    mprotect(addr, len, PROT_READ | PROT_WRITE)) {
		printf("# error: mprotect: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Fresh and just migrated pages sit in a per-CPU LRU batch, where page_idle
 * ignores them.  MADV_COLD drains this CPU's batches (lru_add_drain()); the
 * compact method runs pinned to one CPU.
 */
static int drain_local(void)
{
	if (madvise(dummy, psz, MADV_COLD)) {
		printf("# error: madvise(MADV_COLD): %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

static int page_node(void *addr)
{
	int node = -1;

	if (sys_get_mempolicy(&node, NULL, 0, addr,
			      MPOL_F_NODE | MPOL_F_ADDR) < 0) {
		printf("# error: get_mempolicy(MPOL_F_NODE|MPOL_F_ADDR): %s\n",
		       strerror(errno));
		return -1;
	}
	return node;
}

/* move_pages() one page; returns the page's node afterwards, -1 on error. */
/* @n fresh anonymous pages, each touched once; NULL (said why) on error. */
static char *map_touched(unsigned long n)
{
	char *p = mmap(NULL, n * psz, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned long i;

	if (p == MAP_FAILED) {
		printf("# error: mmap: %s\n", strerror(errno));
		return NULL;
	}
	for (i = 0; i < n; i++)
		p[i * psz] = 1;
	return p;
}

static int move_page(void *addr, int node)
{
	int status = -1;

	if (sys_move_pages(1, &addr, &node, &status, MPOL_MF_MOVE) < 0) {
		printf("# error: move_pages(node %d): %s\n", node,
		       strerror(errno));
		return -1;
	}
	if (status < 0) {
		printf("# error: move_pages(node %d): page status %s\n", node,
		       strerror(-status));
		return -1;
	}
	return status;
}

/*
 * One page: mark idle, touch or not, migrate to target or not.  Returns the
 * idle bit of the page at the end (0 or 1), -1 on error.
 */
static int move_case(const char *name, int touch, int target)
{
	char *p;
	uint64_t pfn, npfn;
	int node, nnode, idle = -1;

	p = map_touched(1);
	if (!p)
		return -1;
	node = page_node(p);
	if (node < 0)
		goto out;
	if (node == target) {
		printf("# error: %s: page already on node %d\n", name, node);
		goto out;
	}
	/* Moves nothing, drains every CPU's batches (lru_cache_disable()). */
	if (move_page(p, node) != node)
		goto out;
	pfn = page_pfn(p);
	if (!pfn || idle_set(pfn))
		goto out;
	idle = idle_get(pfn);
	if (idle == 0)
		printf("# error: %s: pfn 0x%llx not idle after marking (not on LRU?)\n",
		       name, (unsigned long long)pfn);
	if (idle != 1 || flush_tlb(p, psz)) {
		idle = -1;
		goto out;
	}
	if (touch)
		((volatile char *)p)[0]++;
	nnode = node;
	npfn = pfn;
	if (target >= 0) {
		nnode = move_page(p, target);
		npfn = page_pfn(p);
		if (nnode < 0 || !npfn) {
			idle = -1;
			goto out;
		}
		if (nnode != target || npfn == pfn) {
			printf("# error: %s: page not moved (node %d -> %d, pfn 0x%llx -> 0x%llx)\n",
			       name, node, nnode, (unsigned long long)pfn,
			       (unsigned long long)npfn);
			idle = -1;
			goto out;
		}
	}
	idle = idle_get(npfn);
	if (idle < 0)
		goto out;
	printf("# %s: %s, %s, node %d pfn 0x%llx -> node %d pfn 0x%llx, idle: %d\n",
	       name, touch ? "touched" : "not touched",
	       target >= 0 ? "migrated" : "not migrated", node,
	       (unsigned long long)pfn, nnode, (unsigned long long)npfn, idle);
out:
	if (munmap(p, psz)) {
		printf("# error: munmap: %s\n", strerror(errno));
		idle = -1;
	}
	return idle;
}

/* 1: young bit kept, 0: not kept, -1: the method failed. */
static int by_move_pages(int target)
{
	int touched, ctl, young, node, *nodes, *status;
	const unsigned long nballast = 256;
	void **pages;
	char *ballast;
	unsigned long i;

	/*
	 * The page allocator hands out the target node's highest free pages
	 * first, and /sys/kernel/mm/page_idle/bitmap cannot read the last,
	 * partial 64-pfn word below max_pfn: park some pages there first.
	 */
	ballast = map_touched(nballast);
	pages = calloc(nballast, sizeof(*pages));
	nodes = calloc(nballast, sizeof(*nodes));
	status = calloc(nballast, sizeof(*status));
	if (!ballast || !pages || !nodes || !status) {
		printf("# error: ballast: out of memory\n");
		return -1;
	}
	for (i = 0; i < nballast; i++) {
		pages[i] = ballast + i * psz;
		nodes[i] = target;
	}
	if (sys_move_pages(nballast, pages, nodes, status, MPOL_MF_MOVE) < 0)
		printf("# ballast: move_pages: %s (continuing)\n", strerror(errno));
	node = page_node(ballast);
	printf("# ballast: %lu pages, first on node %d\n", nballast, node);

	printf("1..3\n");
	touched = move_case("touch control", 1, -1);
	result(touched == 0,
	       "touch control: a touched idle page is not idle (the touch sets the young bit)");
	ctl = move_case("control", 0, target);
	result(ctl == 1, "control: an untouched idle page is idle after migration");
	young = move_case("young", 1, target);
	result(young >= 0, "young: a touched idle page migrated and read back");
	munmap(ballast, nballast * psz);
	free(pages);
	free(nodes);
	free(status);
	if (touched != 0 || ctl != 1 || young < 0)
		return -1;
	return !young;
}

static int compact_memory(void)
{
	int fd = open(COMPACT, O_WRONLY);

	if (fd < 0) {
		printf("# error: open %s: %s\n", COMPACT, strerror(errno));
		return -1;
	}
	if (write(fd, "1\n", 2) != 2) {
		printf("# error: write %s: %s\n", COMPACT, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* 1: young bit kept, 0: not kept, -1: the method failed. */
static int by_compaction(void)
{
	/* [touched][idle]: pages that moved, and touched ones that did not */
	int moved[2][2] = { { 0, 0 }, { 0, 0 } }, stayed[2] = { 0, 0 };
	size_t len = (size_t)NCOMPACT * psz;
	uint64_t *pfn = calloc(NCOMPACT, sizeof(*pfn));
	char *marked = calloc(NCOMPACT, 1);
	int i, idle, nmarked = 0, ret = -1;
	cpu_set_t cpus;
	char *buf;

	printf("1..3\n");
	if (!pfn || !marked) {
		printf("# error: calloc failed\n");
		goto out_free;
	}
	CPU_ZERO(&cpus);
	CPU_SET(sched_getcpu(), &cpus);
	if (sched_setaffinity(0, sizeof(cpus), &cpus)) {
		printf("# error: sched_setaffinity: %s\n", strerror(errno));
		goto out_free;
	}
	buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (buf == MAP_FAILED) {
		printf("# error: mmap: %s\n", strerror(errno));
		goto out_free;
	}
	if (madvise(buf, len, MADV_NOHUGEPAGE) && errno != EINVAL) {
		printf("# error: madvise(MADV_NOHUGEPAGE): %s\n",
		       strerror(errno));
		goto out;
	}
	for (i = 0; i < NCOMPACT; i++)
		buf[(size_t)i * psz] = 1;
	if (drain_local())
		goto out;
	for (i = 0; i < NCOMPACT; i++) {
		pfn[i] = page_pfn(buf + (size_t)i * psz);
		if (!pfn[i] || idle_set(pfn[i]))
			goto out;
	}
	for (i = 0; i < NCOMPACT; i++) {
		idle = idle_get(pfn[i]);
		if (idle < 0)
			goto out;
		marked[i] = idle;
		nmarked += idle;
	}
	printf("# %d of %d pages idle after marking\n", nmarked, NCOMPACT);
	if (nmarked < NCOMPACT / 2) {
		printf("# error: too few pages on the LRU\n");
		goto out;
	}
	if (flush_tlb(buf, len))
		goto out;
	for (i = 0; i < NCOMPACT; i += 2)
		((volatile char *)buf)[(size_t)i * psz]++;
	if (compact_memory() || drain_local())
		goto out;
	for (i = 0; i < NCOMPACT; i++) {
		uint64_t npfn;

		if (!marked[i])
			continue;
		npfn = page_pfn(buf + (size_t)i * psz);
		if (!npfn)
			goto out;
		idle = idle_get(npfn);
		if (idle < 0)
			goto out;
		if (npfn != pfn[i])
			moved[!(i & 1)][idle]++;
		else if (!(i & 1))
			stayed[idle]++;
	}
	printf("# touched, not moved: %d not idle, %d idle\n",
	       stayed[0], stayed[1]);
	printf("# untouched, moved: %d not idle, %d idle\n",
	       moved[0][0], moved[0][1]);
	printf("# touched, moved: %d not idle, %d idle\n",
	       moved[1][0], moved[1][1]);
	result(stayed[1] == 0,
	       "touch control: touched idle pages that did not move are not idle");
	result(moved[0][1] > 0 && moved[0][0] == 0,
	       "control: untouched idle pages are idle after migration");
	result(moved[1][0] + moved[1][1] > 0 &&
	       !(moved[1][0] && moved[1][1]),
	       "young: touched idle pages migrated, all alike");
	if (tfail == 0)
		ret = moved[1][0] > 0;
out:
	if (munmap(buf, len)) {
		printf("# error: munmap: %s\n", strerror(errno));
		ret = -1;
	}
out_free:
	free(pfn);
	free(marked);
	return ret;
}

/* Another allowed node than the one fresh pages come from, -1 if none. */
static int pick_target(void)
{
	unsigned long mask[MAX_NODES / (8 * sizeof(unsigned long))];
	const int bits = 8 * sizeof(unsigned long);
	int i, nr = 0, node, target = -1, status;
	char *probe;

	memset(mask, 0, sizeof(mask));
	if (sys_get_mempolicy(NULL, mask, MAX_NODES, NULL,
			      MPOL_F_MEMS_ALLOWED) < 0) {
		printf("# error: get_mempolicy(MPOL_F_MEMS_ALLOWED): %s\n",
		       strerror(errno));
		return -1;
	}
	probe = map_touched(1);
	if (!probe)
		return -1;
	node = page_node(probe);
	printf("# nodes allowed:");
	for (i = 0; i < MAX_NODES; i++) {
		if (!(mask[i / bits] & (1UL << (i % bits))))
			continue;
		printf(" %d", i);
		nr++;
		if (i != node && target < 0)
			target = i;
	}
	printf("; fresh pages on node %d\n", node);
	if (node >= 0 && target >= 0 &&
	    sys_move_pages(1, (void **)&probe, NULL, &status, 0) < 0) {
		printf("# move_pages: %s%s\n", strerror(errno),
		       errno == ENOSYS ? " (CONFIG_NUMA_MIGRATION=n)" : "");
		target = -1;
	}
	munmap(probe, psz);
	return node < 0 ? -1 : target;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "auto";
	int target = -1, kept;

	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n");
	if (argc > 2 || (strcmp(mode, "auto") && strcmp(mode, "move") &&
			 strcmp(mode, "compact"))) {
		printf("Bail out! usage: mig_ad [auto|move|compact]\n");
		return 1;
	}
	psz = sysconf(_SC_PAGESIZE);
	if (psz <= 0) {
		printf("Bail out! sysconf(_SC_PAGESIZE) failed\n");
		return 1;
	}
	idle_fd = open(IDLE_BITMAP, O_RDWR);
	if (idle_fd < 0) {
		if (errno == ENOENT) {
			printf("1..0 # SKIP no %s (CONFIG_IDLE_PAGE_TRACKING=n)\n",
			       IDLE_BITMAP);
			return KSFT_SKIP;
		}
		printf("Bail out! open %s: %s\n", IDLE_BITMAP, strerror(errno));
		return 1;
	}
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	if (pagemap_fd < 0) {
		printf("Bail out! open /proc/self/pagemap: %s\n",
		       strerror(errno));
		return 1;
	}
	dummy = mmap(NULL, psz, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (dummy == MAP_FAILED) {
		printf("Bail out! mmap: %s\n", strerror(errno));
		return 1;
	}
	if (strcmp(mode, "compact"))
		target = pick_target();
	if (!strcmp(mode, "move") && target < 0) {
		printf("1..0 # SKIP no other node to move_pages() to (boot with numa=fake=2)\n");
		return KSFT_SKIP;
	}
	if (target < 0 && access(COMPACT, W_OK)) {
		printf("1..0 # SKIP no other node and no %s: %s\n", COMPACT,
		       strerror(errno));
		return KSFT_SKIP;
	}
	if (target >= 0) {
		printf("# method: move_pages to node %d\n", target);
		kept = by_move_pages(target);
	} else {
		printf("# method: compaction (%s), %d pages\n", COMPACT,
		       NCOMPACT);
		kept = by_compaction();
	}
	printf("# Totals: pass:%d fail:%d\n", tpass, tfail);
	if (kept < 0) {
		printf("mig_ad: method failed, no answer\n");
		return 1;
	}
	printf("mig_ad: young bit kept across migration: %s\n",
	       kept ? "yes" : "no");
	return 0;
}
