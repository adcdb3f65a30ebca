// SPDX-License-Identifier: GPL-2.0
/*
 * hmm_bench: user side of the device private memory benchmarks.
 *
 *   hmm_bench throughput DEVICE NPAGES ITERATIONS [thp]
 *	Migrate an anonymous buffer of NPAGES pages to test_hmm's DEVICE
 *	(HMM_DMIRROR_MIGRATE_TO_DEV) and back (HMM_DMIRROR_MIGRATE_TO_SYS),
 *	ITERATIONS times, each ioctl timed; the data is checked after every
 *	round trip.  "thp": the buffer is 2 MiB aligned and MADV_HUGEPAGE.
 *   hmm_bench migrate DEBUGFS_FILE NPAGES
 *	Fill a buffer, have devmem_bench migrate it into its held device
 *	range ("migrate ADDR NPAGES"), count the pages /proc/self/pagemap no
 *	longer shows present, then read every byte back (each page faults
 *	back through migrate_to_ram) and check it; then read it again (no
 *	faults) to time the reading itself.
 *
 * Output: "hmm_bench: key=value ..." lines.  Exit 0 when every check passed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "test_hmm_uapi.h"

#define PAGE_SZ		4096UL
#define THP_SZ		(2UL << 20)
#define MAX_ITER	1000

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static unsigned long parse_ul(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || !*s) {
		fprintf(stderr, "hmm_bench: bad number '%s'\n", s);
		exit(2);
	}
	return v;
}

static void *alloc_buf(unsigned long size, int thp)
{
	unsigned long len = size + (thp ? THP_SZ : 0);
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (thp) {
		p = (char *)(((uintptr_t)p + THP_SZ - 1) & ~(THP_SZ - 1));
		madvise(p, size, MADV_HUGEPAGE);
	}
	return p;
}

static void fill(unsigned long *p, unsigned long size, unsigned long seed)
{
	unsigned long i;

	for (i = 0; i < size / sizeof(*p); i++)
		p[i] = i * 2654435761UL + seed;
}

static unsigned long check(const unsigned long *p, unsigned long size,
			   unsigned long seed)
{
	unsigned long i, bad = 0;

	for (i = 0; i < size / sizeof(*p); i++)
		if (p[i] != i * 2654435761UL + seed)
			bad++;
	return bad;
}

static int dmirror(int fd, unsigned long req, void *buf, void *mirror,
		   unsigned long npages, uint64_t *ns)
{
	struct hmm_dmirror_cmd cmd = {
		.addr = (uintptr_t)buf,
		.ptr = (uintptr_t)mirror,
		.npages = npages,
	};
	uint64_t t0 = now_ns();
	int ret;

	do {
		ret = ioctl(fd, req, &cmd);
	} while (ret && errno == EINTR);
	*ns = now_ns() - t0;
	if (ret) {
		fprintf(stderr, "hmm_bench: ioctl %#lx: %s\n", req,
			strerror(errno));
		return -1;
	}
	return (int)cmd.cpages;
}

static int throughput(const char *dev, unsigned long npages, int iter, int thp)
{
	unsigned long size = npages * PAGE_SZ, bad = 0;
	static uint64_t to_dev[MAX_ITER], to_sys[MAX_ITER];
	unsigned long *buf, *mirror;
	uint64_t sum_dev = 0, sum_sys = 0, md, ms;
	int fd, i, c, short_dev = 0;

	fd = open(dev, O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "hmm_bench: %s: %s\n", dev, strerror(errno));
		return 1;
	}
	buf = alloc_buf(size, thp);
	mirror = alloc_buf(size, 0);
	if (!buf || !mirror) {
		fprintf(stderr, "hmm_bench: out of memory\n");
		return 1;
	}
	for (i = 0; i < iter; i++) {
		fill(buf, size, i);
		c = dmirror(fd, HMM_DMIRROR_MIGRATE_TO_DEV, buf, mirror, npages,
			    &to_dev[i]);
		if (c < 0)
			return 1;
		if ((unsigned long)c != npages)
			short_dev++;
		if (dmirror(fd, HMM_DMIRROR_MIGRATE_TO_SYS, buf, mirror, npages,
			    &to_sys[i]) < 0)
			return 1;
		bad += check(buf, size, i) + check(mirror, size, i);
		sum_dev += to_dev[i];
		sum_sys += to_sys[i];
	}
	md = median(to_dev, iter);
	ms = median(to_sys, iter);
	printf("hmm_bench: throughput npages=%lu thp=%d iterations=%d to_dev_median_ns=%llu to_sys_median_ns=%llu to_dev_pps=%.0f to_sys_pps=%.0f to_dev_mean_pps=%.0f to_sys_mean_pps=%.0f short_migrations=%d bad_words=%lu\n",
	       npages, thp, iter, (unsigned long long)md,
	       (unsigned long long)ms, npages * 1e9 / md, npages * 1e9 / ms,
	       npages * 1e9 * iter / sum_dev, npages * 1e9 * iter / sum_sys,
	       short_dev, bad);
	close(fd);
	return bad || short_dev;
}

static int migrate(const char *file, unsigned long npages)
{
	unsigned long size = npages * PAGE_SZ, i, absent = 0, bad;
	unsigned long *buf;
	char cmd[128], out[4096];
	uint64_t t0, touch_ns, recheck_ns;
	int fd, pm, n;

	buf = alloc_buf(size, 0);
	if (!buf) {
		fprintf(stderr, "hmm_bench: out of memory\n");
		return 1;
	}
	madvise(buf, size, MADV_NOHUGEPAGE);
	fill(buf, size, 0x5eed);

	fd = open(file, O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "hmm_bench: %s: %s\n", file, strerror(errno));
		return 1;
	}
	n = snprintf(cmd, sizeof(cmd), "migrate %#lx %lu", (unsigned long)buf,
		     npages);
	if (write(fd, cmd, n) != n) {
		fprintf(stderr, "hmm_bench: '%s': %s\n", cmd, strerror(errno));
		return 1;
	}
	n = pread(fd, out, sizeof(out) - 1, 0);
	if (n > 0) {
		out[n] = '\0';
		fputs(out, stdout);
	}
	close(fd);

	pm = open("/proc/self/pagemap", O_RDONLY);
	for (i = 0; pm >= 0 && i < npages; i++) {
		uint64_t e;

		if (pread(pm, &e, sizeof(e),
			  ((uintptr_t)buf / PAGE_SZ + i) * sizeof(e)) != sizeof(e))
			break;
		if (!(e >> 63 & 1))
			absent++;
	}
	if (pm >= 0)
		close(pm);

	t0 = now_ns();
	bad = check(buf, size, 0x5eed);
	touch_ns = now_ns() - t0;
	/* The same read again, every page present: what the faults added. */
	t0 = now_ns();
	bad += check(buf, size, 0x5eed);
	recheck_ns = now_ns() - t0;
	printf("hmm_bench: migrate npages=%lu not_present_after_migrate=%lu bad_words_after_faults=%lu fault_back_ns=%llu recheck_ns=%llu\n",
	       npages, absent, bad, (unsigned long long)touch_ns,
	       (unsigned long long)recheck_ns);
	munmap(buf, size);
	return bad || absent != npages;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && !strcmp(argv[1], "throughput")) {
		unsigned long iter = parse_ul(argv[4]);

		if (!iter || iter > MAX_ITER) {
			fprintf(stderr, "hmm_bench: 1..%d iterations\n", MAX_ITER);
			return 2;
		}
		return throughput(argv[2], parse_ul(argv[3]), iter,
				  argc > 5 && !strcmp(argv[5], "thp"));
	}
	if (argc == 4 && !strcmp(argv[1], "migrate"))
		return migrate(argv[2], parse_ul(argv[3]));
	fprintf(stderr,
		"usage: hmm_bench throughput DEVICE NPAGES ITERATIONS [thp]\n"
		"       hmm_bench migrate DEBUGFS_FILE NPAGES\n");
	return 2;
}
