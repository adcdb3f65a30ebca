// SPDX-License-Identifier: GPL-2.0
/*
 * Fault injection around test_hmm's device memory registration, for
 * scripts/guest/faultinject.sh (which builds this with gcc -static on the
 * host and runs it in the guest).
 *
 *   fi_hmm filter FUNC|none
 *	Restrict failslab and fail_page_alloc to allocations with FUNC on the
 *	call stack (its [start, next symbol) from /proc/kallsyms as
 *	require-start/require-end), or lift the restriction.
 *   fi_hmm sweep FIRST LAST [thp]
 *	For N = FIRST..LAST: unregister device 0's memory (HMM_DMIRROR_RELEASE),
 *	make the N-th fault-injection point of one HMM_DMIRROR_MIGRATE_TO_DEV
 *	fail (/proc/thread-self/fail-nth), then check (below).  Stops early
 *	when the migration passed fewer than N points (the sweep is complete).
 *   fi_hmm random ROUNDS [thp]
 *	Like sweep, but with /proc/thread-self/make-it-fail set around the
 *	migration: the probability/interval/times set in debugfs decide.
 *   fi_hmm load MODULE.ko [PARAMS]
 *	finit_module() with make-it-fail set; prints the result.
 *   fi_hmm count [thp]
 *	How many injection points (after the stack filter) one registration
 *	passes, with fail-nth set far beyond them.
 *   fi_hmm check
 *	No injection: a THP-sized and a small migration with every device pfn
 *	inside a test_hmm range of /sys/kernel/debug/device_private, inside the window
 *	and above 1 << MAX_PHYSMEM_BITS; data checked after the CPU faults the
 *	pages back.
 *
 * Checks after each injected migration (injection off again):
 *  - the ioctl returned 0 or a negative errno (whatever it was, it is
 *    counted by value);
 *  - every page the device holds has a pfn in a range /sys/kernel/debug/device_private
 *    lists for test_hmm;
 *  - a second migration without injection moves every page that is still
 *    in system memory, and the device then holds all of them;
 *  - the CPU faults every page back with the data it had;
 *  - after the next HMM_DMIRROR_RELEASE, /sys/kernel/debug/device_private lists as many
 *    test_hmm ranges as before the round (a failed registration kept none).
 *
 * Output: '# ...' lines for the log, and one 'result ...' line that the
 * shell parses.  Exit 0 when every check passed, 1 otherwise, 2 on a usage
 * or setup error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

/* dmirror_ioctl(): the selftests' wrapper, from the series tree (-I). */
#include <tools/testing/selftests/hmm/dmirror.h>

#define THP_SIZE		(2UL << 20)
#define SMALL_PAGES		16
#define MAX_RANGES		256
#define DEBUGFS			"/sys/kernel/debug"

#define PM_PFRAME_MASK		((1ULL << 55) - 1)
#define PM_SWAP			(1ULL << 62)
#define PM_PRESENT		(1ULL << 63)
#define PM_SWP_TYPE_BITS	5
#define PM_SWP_TYPE_SPECIAL_MIN	((1U << PM_SWP_TYPE_BITS) - 8)

struct range {
	unsigned long long start, end;	/* inclusive */
};

static size_t page_size;
static int dev_fd = -1, nth_fd = -1, mif_fd = -1;
static int failures;

static void fail(const char *fmt, ...)
{
	va_list ap;

	failures++;
	printf("# FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY), ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

static long long read_ll(const char *path)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtoll(buf, NULL, 0) : -1;
}

/* Injections so far, from the debugfs 'times' counters (set high by the shell). */
static long long times_left(void)
{
	return read_ll(DEBUGFS "/failslab/times") + read_ll(DEBUGFS "/fail_page_alloc/times");
}

static int set_fd(int fd, unsigned int v)
{
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%u", v);

	return pwrite(fd, buf, n, 0) == n ? 0 : -errno;
}

static long get_fd(int fd)
{
	char buf[16] = "";

	if (pread(fd, buf, sizeof(buf) - 1, 0) <= 0)
		return -1;
	return strtol(buf, NULL, 10);
}

static int dmirror(unsigned long req, void *addr, void *ptr, unsigned long npages,
		   struct hmm_dmirror_cmd *out)
{
	return dmirror_ioctl(dev_fd, req, addr, ptr, npages, out);
}

static uint32_t pattern(uint32_t seed, size_t i)
{
	uint32_t x = (uint32_t)i * 2654435761u ^ seed;

	return x ^ (x >> 15);
}

static void fill(char *p, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len / 4; i++)
		((uint32_t *)p)[i] = pattern(seed, i);
}

static long check(const char *p, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len / 4; i++)
		if (((const uint32_t *)p)[i] != pattern(seed, i))
			return (long)i * 4;
	return -1;
}

static int read_ranges_in(const char *path, const char *name, struct range *r, int max)
{
	char line[256], nm[128];
	unsigned long long s, e;
	FILE *f = fopen(path, "r");
	int n = 0;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, " %llx-%llx : %127[^\n]", &s, &e, nm) == 3 &&
		    !strcmp(nm, name) && n < max) {
			r[n].start = s;
			r[n].end = e;
			n++;
		}
	fclose(f);
	return n;
}

static int read_ranges(const char *name, struct range *r, int max)
{
	return read_ranges_in("/sys/kernel/debug/device_private", name, r, max);
}

/* test_hmm's ranges: in the window, or in /proc/iomem (legacy_placement=1). */
static int dev_ranges(struct range *r)
{
	int n = read_ranges("hmm_dmirror", r, MAX_RANGES), m;

	if (n < 0)
		n = 0;
	m = read_ranges_in("/proc/iomem", "hmm_dmirror", r + n, MAX_RANGES - n);
	return n + (m > 0 ? m : 0);
}

static int pagemap_fd = -1;

static int pagemap(void *addr, unsigned long long *ent)
{
	off_t off = (uintptr_t)addr / page_size * 8;

	return pread(pagemap_fd, ent, 8, off) == 8 ? 0 : -1;
}

/* Pages of [p, p + len) on the device; -1 if one is outside test_hmm's ranges. */
static long device_pages(char *p, size_t len, unsigned long long *first_pfn)
{
	struct range r[MAX_RANGES];
	int n = dev_ranges(r), i;
	unsigned long long ent, pfn, phys;
	long count = 0;

	for (size_t off = 0; off < len; off += page_size) {
		if (pagemap(p + off, &ent))
			return -1;
		if ((ent & PM_PRESENT) || !(ent & PM_SWAP))
			continue;
		if ((ent & PM_PFRAME_MASK & ((1U << PM_SWP_TYPE_BITS) - 1)) <
		    PM_SWP_TYPE_SPECIAL_MIN)
			continue;
		pfn = (ent & PM_PFRAME_MASK) >> PM_SWP_TYPE_BITS;
		phys = pfn * page_size;
		for (i = 0; i < n; i++)
			if (phys >= r[i].start && phys <= r[i].end)
				break;
		if (i == n) {
			fail("offset %#zx: device pfn %#llx in none of %d test_hmm ranges",
			     off, pfn, n);
			return -1;
		}
		if (first_pfn && !count)
			*first_pfn = pfn;
		count++;
	}
	return count;
}

struct buf {
	char *map, *p, *mirror;
	size_t len, maplen;
};

static int buf_new(struct buf *b, bool thp, uint32_t seed)
{
	b->len = thp ? THP_SIZE : SMALL_PAGES * page_size;
	b->maplen = b->len + THP_SIZE;
	b->map = mmap(NULL, b->maplen, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (b->map == MAP_FAILED)
		return -errno;
	b->p = (char *)(((uintptr_t)b->map + THP_SIZE - 1) & ~(THP_SIZE - 1));
	/* Small rounds must not get a THP that the migration would split. */
	madvise(b->p, b->len, thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	fill(b->p, b->len, seed);
	b->mirror = malloc(b->len);
	if (!b->mirror)
		return -ENOMEM;
	memset(b->mirror, 0, b->len);	/* no page faults inside the ioctl */
	return 0;
}

static void buf_free(struct buf *b)
{
	munmap(b->map, b->maplen);
	free(b->mirror);
}

static int baseline = -1;	/* test_hmm ranges right after a RELEASE */

static int release(void)
{
	struct range r[MAX_RANGES];
	int ret = dmirror(HMM_DMIRROR_RELEASE, NULL, NULL, 1, NULL), n;

	if (ret) {
		fail("HMM_DMIRROR_RELEASE: %s", strerror(-ret));
		return ret;
	}
	n = dev_ranges(r);
	if (baseline < 0)
		baseline = n;
	else if (n != baseline) {
		fail("after RELEASE %d test_hmm ranges in /sys/kernel/debug/device_private, %d before: a range leaked",
		     n, baseline);
		baseline = n;
	}
	return 0;
}

/*
 * One round: release, injected migration (how: 'n' = fail-nth, 'r' =
 * make-it-fail, 0 = none), checks.  Returns whether an injection hit.
 */
enum { INJ_NONE, INJ_NTH, INJ_RANDOM };

static int errs[64];	/* histogram of -ioctl results, 0..63 */
static unsigned int thp_backed;	/* THP rounds whose source really was a THP */

static long anon_huge_kb(void)
{
	char line[128];
	long kb = -1;
	FILE *f = fopen("/proc/self/smaps_rollup", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static bool round_once(int how, unsigned int nth, bool thp, uint32_t seed,
		       bool *exhausted)
{
	struct hmm_dmirror_cmd cmd = { 0 };
	long long t0 = times_left(), t1;
	bool hit = false, huge = false;
	struct buf b;
	long on_dev, left;
	int ret, ret2;
	long bad;

	*exhausted = false;
	if (buf_new(&b, thp, seed)) {
		fail("buffer: %s", strerror(errno));
		return false;
	}
	if (thp && anon_huge_kb() >= (long)(THP_SIZE >> 10)) {
		thp_backed++;
		huge = true;
	}
	if (release())
		goto out;

	if (how == INJ_NTH && set_fd(nth_fd, nth))
		fail("fail-nth: %s", strerror(errno));
	if (how == INJ_RANDOM && set_fd(mif_fd, 1))
		fail("make-it-fail: %s", strerror(errno));
	ret = dmirror(HMM_DMIRROR_MIGRATE_TO_DEV, b.p, b.mirror, b.len / page_size, &cmd);
	if (how == INJ_RANDOM)
		set_fd(mif_fd, 0);
	if (how == INJ_NTH) {
		left = get_fd(nth_fd);
		set_fd(nth_fd, 0);
		hit = left == 0;
		*exhausted = left > 0;
	}
	t1 = times_left();
	if (how == INJ_RANDOM)
		hit = t0 > t1;
	errs[ret < 0 && -ret < 64 ? -ret : 0]++;

	on_dev = device_pages(b.p, b.len, NULL);
	printf("# %s %u: hit=%d injections=%lld ioctl=%d%s%s cpages=%llu on_device=%ld%s\n",
	       how == INJ_NTH ? "nth" : how == INJ_RANDOM ? "random" : "plain", nth,
	       hit, t0 - t1, ret, ret ? " " : "", ret ? strerror(-ret) : "",
	       (unsigned long long)cmd.cpages, on_dev, huge ? " thp" : "");
	if (on_dev < 0)
		goto out;	/* already failed: a device pfn outside the ranges */
	if (!ret && check(b.mirror, b.len, seed) >= 0 && (size_t)on_dev == b.len / page_size)
		fail("ioctl succeeded but the device copy differs");

	/* Injection off: the rest must migrate now. */
	ret2 = dmirror(HMM_DMIRROR_MIGRATE_TO_DEV, b.p, b.mirror, b.len / page_size, &cmd);
	on_dev = device_pages(b.p, b.len, NULL);
	if (ret2)
		fail("migration without injection after the injected one: %s", strerror(-ret2));
	else if (on_dev != (long)(b.len / page_size))
		fail("migration without injection: %ld of %zu pages on the device",
		     on_dev, b.len / page_size);
	else if ((bad = check(b.mirror, b.len, seed)) >= 0)
		fail("device copy differs at offset %#lx", bad);

	/* The CPU faults everything back. */
	if ((bad = check(b.p, b.len, seed)) >= 0)
		fail("data after fault back differs at offset %#lx", bad);
	on_dev = device_pages(b.p, b.len, NULL);
	if (on_dev != 0)
		fail("%ld pages still on the device after the CPU touched them", on_dev);
out:
	buf_free(&b);
	fflush(stdout);
	return hit;
}

static int open_common(void)
{
	page_size = sysconf(_SC_PAGESIZE);
	dev_fd = open("/dev/hmm_dmirror0", O_RDWR);
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	nth_fd = open("/proc/thread-self/fail-nth", O_RDWR);
	mif_fd = open("/proc/thread-self/make-it-fail", O_RDWR);
	if (dev_fd < 0 || pagemap_fd < 0) {
		printf("# cannot open /dev/hmm_dmirror0 or pagemap: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

static void print_errs(void)
{
	printf("# ioctl results:");
	for (int i = 0; i < 64; i++)
		if (errs[i])
			printf(" %s=%d", i ? strerrorname_np(i) ?: "?" : "0", errs[i]);
	printf("\n");
}

static int do_sweep(unsigned int first, unsigned int last, bool thp)
{
	unsigned int n, hits = 0, done = 0;
	bool exhausted = false;

	if (nth_fd < 0) {
		printf("# no /proc/thread-self/fail-nth\n");
		return 2;
	}
	for (n = first; n <= last && !exhausted; n++) {
		hits += round_once(INJ_NTH, n, thp, n * 7919u, &exhausted);
		done++;
	}
	release();
	print_errs();
	printf("result rounds=%u hits=%u next=%u exhausted=%d thp_backed=%u failures=%d\n",
	       done, hits, exhausted ? 0 : n, exhausted, thp_backed, failures);
	return failures ? 1 : 0;
}

/* Injection points (after the stack filter) of one registration, none failed. */
static int do_count(bool thp)
{
	struct hmm_dmirror_cmd cmd;
	long left, huge;
	struct buf b;
	int ret;

	if (nth_fd < 0 || buf_new(&b, thp, 1))
		return 2;
	huge = anon_huge_kb();
	if (release())
		return 1;
	set_fd(nth_fd, 1000000);
	ret = dmirror(HMM_DMIRROR_MIGRATE_TO_DEV, b.p, b.mirror, b.len / page_size, &cmd);
	left = get_fd(nth_fd);
	set_fd(nth_fd, 0);
	if (check(b.p, b.len, 1) >= 0)
		fail("data differs");
	buf_free(&b);
	release();
	printf("result points=%ld ioctl=%d anon_huge_kb=%ld failures=%d\n",
	       left >= 0 ? 1000000 - left : -1, ret, huge, failures);
	return failures ? 1 : 0;
}

static int do_random(unsigned int rounds, bool thp)
{
	long long t0 = times_left();
	unsigned int i, hits = 0;
	bool ex;

	if (mif_fd < 0) {
		printf("# no /proc/thread-self/make-it-fail\n");
		return 2;
	}
	for (i = 0; i < rounds; i++)
		hits += round_once(INJ_RANDOM, i, thp, i * 104729u, &ex);
	release();
	print_errs();
	printf("result rounds=%u hits=%u injections=%lld thp_backed=%u failures=%d\n",
	       rounds, hits, t0 - times_left(), thp_backed, failures);
	return failures ? 1 : 0;
}

static int do_load(const char *ko, const char *params)
{
	long long t0 = times_left();
	int fd = open(ko, O_RDONLY), ret;

	mif_fd = open("/proc/thread-self/make-it-fail", O_RDWR);
	if (fd < 0 || mif_fd < 0) {
		printf("# %s: %s\n", ko, strerror(errno));
		return 2;
	}
	set_fd(mif_fd, 1);
	ret = syscall(SYS_finit_module, fd, params, 0) ? -errno : 0;
	set_fd(mif_fd, 0);
	printf("result load=%d injections=%lld%s%s\n", ret, t0 - times_left(),
	       ret ? " " : "", ret ? strerror(-ret) : "");
	return 0;
}

/* The window with injection off: placement and data. */
static int do_check(void)
{
	struct range win[2], r[MAX_RANGES];
	unsigned long long pfn = 0, min_phys;
	struct hmm_dmirror_cmd cmd;
	int n, w, i, ret;
	bool thp;
	long on;

	/* MAX_PHYSMEM_BITS: 46 with 4-level paging, 52 with 5-level. */
	void *hint = mmap((void *)(1UL << 50), page_size, PROT_READ,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	min_phys = (hint != MAP_FAILED && (uintptr_t)hint >= (1UL << 47)) ?
		   1ULL << 52 : 1ULL << 46;
	w = read_ranges("Device private memory", win, 2);
	if (w != 1) {
		fail("%d window lines in /sys/kernel/debug/device_private", w);
		return 1;
	}
	printf("# window %#llx-%#llx, must start at >= %#llx\n", win[0].start,
	       win[0].end, min_phys);
	if (win[0].start < min_phys)
		fail("window starts below 1 << MAX_PHYSMEM_BITS");
	for (i = 0; i < 2; i++) {
		struct buf b;

		thp = i == 0;
		if (buf_new(&b, thp, 4242 + i))
			return 2;
		long huge = anon_huge_kb();

		ret = dmirror(HMM_DMIRROR_MIGRATE_TO_DEV, b.p, b.mirror, b.len / page_size, &cmd);
		on = device_pages(b.p, b.len, &pfn);
		printf("# %s: AnonHugePages %ld kB, ioctl=%d cpages=%llu on_device=%ld first pfn %#llx\n",
		       thp ? "THP" : "small", huge, ret, (unsigned long long)cmd.cpages, on, pfn);
		if (ret || on != (long)(b.len / page_size))
			fail("%s migration: ioctl %d, %ld of %zu pages on the device",
			     thp ? "THP" : "small", ret, on, b.len / page_size);
		else if (check(b.mirror, b.len, 4242 + i) >= 0)
			fail("device copy differs");
		n = dev_ranges(r);
		for (int j = 0; j < n; j++)
			if (r[j].start < win[0].start || r[j].end > win[0].end)
				fail("test_hmm range %#llx-%#llx outside the window",
				     r[j].start, r[j].end);
		if (on > 0 && (pfn * page_size < win[0].start || pfn * page_size > win[0].end))
			fail("device pfn %#llx outside the window", pfn);
		ret = dmirror(HMM_DMIRROR_MIGRATE_TO_SYS, b.p, b.mirror, b.len / page_size, &cmd);
		if (ret)
			fail("migration back: %s", strerror(-ret));
		if (check(b.p, b.len, 4242 + i) >= 0)
			fail("data after migrating back differs");
		if (device_pages(b.p, b.len, NULL) != 0)
			fail("pages left on the device");
		buf_free(&b);
	}
	printf("result failures=%d\n", failures);
	return failures ? 1 : 0;
}

static int do_filter(const char *func)
{
	char line[512], name[256], type, start[32] = "", end[32] = "";
	unsigned long long a, best = ~0ULL, fa = 0;
	const char *attrs[] = { "failslab", "fail_page_alloc" };
	char path[128];
	FILE *f;

	if (strcmp(func, "none")) {
		/* FUNC[,FALLBACK...]: the first one kallsyms has (not inlined). */
		char list[256], *tok, *save = NULL;

		f = fopen("/proc/kallsyms", "r");
		if (!f)
			return 2;
		snprintf(list, sizeof(list), "%s", func);
		for (tok = strtok_r(list, ",", &save); tok && !fa;
		     tok = strtok_r(NULL, ",", &save)) {
			rewind(f);
			while (fgets(line, sizeof(line), f))
				if (sscanf(line, "%llx %c %255s", &a, &type, name) == 3 &&
				    !strcmp(name, tok) && (type == 't' || type == 'T'))
					fa = a;
			if (fa)
				func = strdup(tok);
		}
		if (!fa) {
			fclose(f);
			printf("# none of %s in /proc/kallsyms\n", func);
			return 2;
		}
		rewind(f);
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "%llx %c", &a, &type) == 2 && a > fa && a < best)
				best = a;
		fclose(f);
		if (best == ~0ULL)
			return 2;
		snprintf(start, sizeof(start), "%#llx", fa);
		snprintf(end, sizeof(end), "%#llx", best);
	} else {
		strcpy(start, "0");
		strcpy(end, "18446744073709551615");
	}
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), DEBUGFS "/%s/require-start", attrs[i]);
		if (write_str(path, "0"))
			return 2;
		snprintf(path, sizeof(path), DEBUGFS "/%s/require-end", attrs[i]);
		if (write_str(path, end))
			return 2;
		snprintf(path, sizeof(path), DEBUGFS "/%s/require-start", attrs[i]);
		if (write_str(path, start))
			return 2;
		snprintf(path, sizeof(path), DEBUGFS "/%s/stacktrace-depth", attrs[i]);
		if (write_str(path, "32"))
			return 2;
	}
	printf("result filter=%s start=%s end=%s\n", func, start, end);
	return 0;
}

int main(int argc, char **argv)
{
	bool thp = argc > 4 && !strcmp(argv[argc - 1], "thp");

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && !strcmp(argv[1], "filter"))
		return do_filter(argv[2]);
	if (argc >= 3 && !strcmp(argv[1], "load"))
		return do_load(argv[2], argc > 3 ? argv[3] : "");
	if (argc >= 2 && !strcmp(argv[1], "check"))
		return open_common() ? 2 : do_check();
	if (argc >= 4 && !strcmp(argv[1], "sweep"))
		return open_common() ? 2 : do_sweep(atoi(argv[2]), atoi(argv[3]), thp);
	if (argc >= 2 && !strcmp(argv[1], "count"))
		return open_common() ? 2 : do_count(argc > 2 && !strcmp(argv[2], "thp"));
	if (argc >= 3 && !strcmp(argv[1], "random")) {
		thp = argc > 3 && !strcmp(argv[3], "thp");
		return open_common() ? 2 : do_random(atoi(argv[2]), thp);
	}
	fprintf(stderr, "usage: fi_hmm filter FUNC|none | sweep FIRST LAST [thp] | "
		"random ROUNDS [thp] | load KO [PARAMS] | count [thp] | check\n");
	return 2;
}
