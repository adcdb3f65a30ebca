// SPDX-License-Identifier: GPL-2.0
/*
 * Stress worker for scripts/guest/stress.sh: move anonymous memory to
 * test_hmm's device-private memory and back, checking every byte, until a
 * time limit.
 *
 *   stress_hmm migrate  -d DEV -m MIB -t SECONDS [-s SEED] [-n NAME]
 *   stress_hmm regcycle -d DEV -m MIB -t SECONDS [-s SEED] [-n NAME]
 *   stress_hmm fwrite|fcheck -f FILE -m MIB [-s SEED]
 *
 * fwrite/fcheck write and check the same pattern in a file (the hotplug
 * worker's tmpfs data on the RAM that gets offlined).
 *
 * Each round fills the buffer with a pattern that depends on SEED and the
 * round, migrates it to DEV (HMM_DMIRROR_MIGRATE_TO_DEV) and checks
 * /proc/self/pagemap: every migrated page must be a non-present entry whose
 * pfn lies in the device private pfn window (start read from
 * /sys/kernel/debug/device_private).  Then:
 *  migrate:  every 4th round the device's copy is read back through
 *            HMM_DMIRROR_READ and checked, and the buffer is unmapped while
 *            its pages are on the device (device pages freed by munmap);
 *            the other rounds read every byte from the CPU, which faults
 *            each page back to system memory.
 *  regcycle: HMM_DMIRROR_RELEASE unregisters all of DEV's memory
 *            (evict, memunmap_pages(), release of the window range), then
 *            pagemap must show no device entry and every byte is read from
 *            the CPU.  The next round's migration registers new chunks.
 *
 * Prints '# stress_hmm NAME: ...' counters; exit 0 only when no byte and no
 * pagemap entry was wrong and at least one page reached the device.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

/* dmirror_ioctl(): the selftests' wrapper, from the series tree (-I). */
#include <tools/testing/selftests/hmm/dmirror.h>
#include "pagemap.h"


static size_t psz;
static const char *name = "worker";
static unsigned long long win_start_pfn, win_end_pfn;
static unsigned long long transient;	/* migration entries seen */

static long dcmd(int fd, unsigned long req, void *addr, void *ptr, size_t len,
		 unsigned long long *faults)
{
	struct hmm_dmirror_cmd c;
	int ret = dmirror_ioctl(fd, req, addr, ptr, len / psz, &c);

	if (faults)
		*faults = c.faults;
	return ret ? ret : (long)c.cpages;
}

static inline uint64_t word(uint64_t seed, size_t i)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ULL ^ seed;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	return x ^ (x >> 29);
}

static void fill(uint64_t *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len / 8; i++)
		p[i] = word(seed, i);
}

/* Compares every byte; returns the number of wrong bytes. */
static size_t check(const uint8_t *p, size_t len, uint64_t seed, const char *what)
{
	size_t bad = 0;

	for (size_t i = 0; i < len / 8; i++) {
		uint64_t w = word(seed, i);

		for (int b = 0; b < 8; b++) {
			uint8_t want = (uint8_t)(w >> (8 * b));

			if (p[i * 8 + b] != want) {
				if (!bad)
					printf("# stress_hmm %s: %s: byte %zu is 0x%02x, want 0x%02x\n",
					       name, what, i * 8 + b, p[i * 8 + b], want);
				bad++;
			}
		}
	}
	return bad;
}

/* Window start from the first line of /sys/kernel/debug/device_private. */
static int read_window(void)
{
	FILE *f = fopen("/sys/kernel/debug/device_private", "r");
	unsigned long long s, e;

	if (!f)
		return -errno;
	if (fscanf(f, "%llx-%llx", &s, &e) != 2) {
		fclose(f);
		return -EINVAL;
	}
	fclose(f);
	win_start_pfn = s / psz;
	win_end_pfn = (e + 1) / psz;
	return 0;
}

/*
 * Counts pages of [p, p+len) that pagemap shows as device entries (device
 * private swap type, pfn in the window), present pages, migration entries
 * (*nmig: a page that memory offlining is moving right now, pfn below the
 * window, or a device page on its way, window migration type and pfn) and
 * anything else (*nbad).
 */
static int pagemap_scan(int pm, void *p, size_t len, size_t *ndev, size_t *nbad,
			size_t *npresent, size_t *nmig)
{
	size_t n = len / psz;
	uint64_t *e = malloc(n * 8);
	off_t off = (uintptr_t)p / psz * 8;

	*ndev = *nbad = *npresent = *nmig = 0;
	if (!e || pread(pm, e, n * 8, off) != (ssize_t)(n * 8)) {
		free(e);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (e[i] & PM_PRESENT) {
			(*npresent)++;
		} else if (e[i] & PM_SWAP) {
			unsigned long long pfn = (e[i] & PM_PFRAME) >> SWP_TYPE_BITS;
			unsigned int type = e[i] & ((1 << SWP_TYPE_BITS) - 1);

			if ((type == SWP_DEVICE_WRITE || type == SWP_DEVICE_READ) &&
			    pfn >= win_start_pfn && pfn < win_end_pfn) {
				(*ndev)++;
			} else if ((type >= SWP_MIGRATION_FIRST && type <= SWP_MIGRATION_LAST &&
				    pfn < win_start_pfn) ||
				   (type >= SWP_WINDOW_MIGRATION_FIRST &&
				    type <= SWP_WINDOW_MIGRATION_LAST &&
				    pfn >= win_start_pfn && pfn < win_end_pfn)) {
				(*nmig)++;
				transient++;
			} else {
				if (!*nbad)
					printf("# stress_hmm %s: page %zu: pagemap 0x%016llx: type %u pfn 0x%llx (window 0x%llx-0x%llx)\n",
					       name, i, (unsigned long long)e[i], type, pfn, win_start_pfn, win_end_pfn);
				(*nbad)++;
			}
		} else {
			if (!*nbad)
				printf("# stress_hmm %s: page %zu: pagemap 0x%016llx (not mapped)\n",
				       name, i, (unsigned long long)e[i]);
			(*nbad)++;
		}
	}
	free(e);
	return 0;
}

/*
 * Printed when pagemap disagrees with what the migration returned: what
 * pagemap shows (again after 200 ms) and what the device's mirror sees
 * (HMM_DMIRROR_SNAPSHOT: the CPU page table through hmm_range_fault()).
 */
static void diagnose(int fd, int pm, uint8_t *p, size_t len, unsigned long round)
{
	size_t n = len / psz, ndev, nbad, npres, nmig, cnt[256] = { 0 };
	uint8_t *snap = malloc(n);
	uint64_t e0 = 0;

	pagemap_scan(pm, p, len, &ndev, &nbad, &npres, &nmig);
	pread(pm, &e0, 8, (uintptr_t)p / psz * 8);
	printf("# stress_hmm %s: round %lu diag: pagemap now: %zu device, %zu present, %zu migrating, %zu other; first entry 0x%016llx\n",
	       name, round, ndev, npres, nmig, nbad, (unsigned long long)e0);
	if (snap) {
		if (dmirror_ioctl(fd, HMM_DMIRROR_SNAPSHOT, p, snap, n, NULL) == 0) {
			for (size_t i = 0; i < n; i++)
				cnt[snap[i]]++;
			printf("# stress_hmm %s: round %lu diag: snapshot:", name, round);
			for (int v = 0; v < 256; v++)
				if (cnt[v])
					printf(" 0x%02x:%zu", v, cnt[v]);
			printf("\n");
		} else {
			printf("# stress_hmm %s: round %lu diag: snapshot: %s\n", name, round, strerror(errno));
		}
		free(snap);
	}
	usleep(200000);
	pagemap_scan(pm, p, len, &ndev, &nbad, &npres, &nmig);
	printf("# stress_hmm %s: round %lu diag: pagemap +200ms: %zu device, %zu present, %zu migrating, %zu other\n",
	       name, round, ndev, npres, nmig, nbad);
}

static void touch(volatile uint8_t *p, size_t len)
{
	for (size_t off = 0; off < len; off += psz)
		(void)p[off];
}

/* migrate_vma skips pages it cannot isolate now (e.g. while memory offlining
 * migrates them); test_hmm then fails the call.  Fault the range back and
 * retry, like hmm_hold does. */
static long to_device(int fd, uint8_t *p, uint8_t *mirror, size_t len, unsigned long *retries)
{
	long n = 0;

	for (int i = 0; i < 20; i++) {
		n = dcmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, mirror, len, NULL);
		if (n == (long)(len / psz))
			return n;
		(*retries)++;
		touch(p, len);
		usleep(10000);
	}
	return n;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int file_mode(const char *mode, const char *file, size_t len, uint64_t seed)
{
	int write_it = !strcmp(mode, "fwrite");
	int fd = open(file, write_it ? O_RDWR | O_CREAT | O_TRUNC : O_RDONLY, 0600);
	uint8_t *b = malloc(len);
	size_t bad;

	if (fd < 0 || !b) {
		printf("# stress_hmm %s: %s: %s\n", name, file, strerror(errno));
		return 2;
	}
	if (write_it) {
		fill((uint64_t *)b, len, seed);
		if (write(fd, b, len) != (ssize_t)len) {
			printf("# stress_hmm %s: short write to %s\n", name, file);
			return 2;
		}
		close(fd);
		return 0;
	}
	if (read(fd, b, len) != (ssize_t)len || read(fd, b, 1) != 0) {
		printf("# stress_hmm %s: %s does not have %zu bytes\n", name, file, len);
		return 1;
	}
	/* read(fd, b, 1) above returned 0 and did not touch b. */
	lseek(fd, 0, SEEK_SET);
	read(fd, b, len);
	bad = check(b, len, seed, file);
	printf("# stress_hmm %s: %s: %zu bytes checked, %zu wrong\n", name, file, len, bad);
	close(fd);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *file = NULL;
	const char *dev = "/dev/hmm_dmirror0", *mode;
	unsigned long mib = 16, secs = 60, seed = 1;
	unsigned long rounds = 0, full = 0, partial = 0, failed = 0, retries = 0;
	unsigned long releases = 0, unmapped_on_dev = 0;
	unsigned long long bytes_cpu = 0, bytes_dev = 0, pages_to_dev = 0;
	size_t bad_bytes = 0, bad_pm = 0;
	double t_end;
	int opt, fd, pm;
	size_t len;
	uint8_t *p = NULL, *mirror;

	if (argc < 2)
		goto usage;
	mode = argv[1];
	optind = 2;
	while ((opt = getopt(argc, argv, "d:m:t:s:n:f:")) != -1) {
		switch (opt) {
		case 'f': file = optarg; break;
		case 'd': dev = optarg; break;
		case 'm': mib = strtoul(optarg, NULL, 0); break;
		case 't': secs = strtoul(optarg, NULL, 0); break;
		case 's': seed = strtoul(optarg, NULL, 0); break;
		case 'n': name = optarg; break;
		default: goto usage;
		}
	}
	psz = sysconf(_SC_PAGESIZE);
	len = mib << 20;
	if ((!strcmp(mode, "fwrite") || !strcmp(mode, "fcheck")) && file)
		return file_mode(mode, file, len, seed);
	if (strcmp(mode, "migrate") && strcmp(mode, "regcycle"))
		goto usage;
	if (read_window()) {
		printf("# stress_hmm %s: no /sys/kernel/debug/device_private window\n", name);
		return 2;
	}
	fd = open(dev, O_RDWR);
	pm = open("/proc/self/pagemap", O_RDONLY);
	mirror = malloc(len);
	if (fd < 0 || pm < 0 || !mirror) {
		printf("# stress_hmm %s: open %s: %s\n", name, dev, strerror(errno));
		return 2;
	}
	t_end = now() + secs;
	while (now() < t_end) {
		uint64_t s = seed * 1000003ULL + rounds;
		size_t ndev, nbad, npres, nmig;
		long n;

		if (!p) {
			p = mmap(NULL, len, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p == MAP_FAILED) {
				printf("# stress_hmm %s: mmap: %s\n", name, strerror(errno));
				return 2;
			}
		}
		fill((uint64_t *)p, len, s);
		n = to_device(fd, p, mirror, len, &retries);
		rounds++;
		if (n < 0) {
			failed++;
			if (failed <= 3)
				printf("# stress_hmm %s: round %lu: migration to %s: %s\n",
				       name, rounds, dev, strerror(-n));
			n = 0;
		} else if (n == (long)(len / psz)) {
			full++;
		} else {
			partial++;
		}
		pages_to_dev += n;
		if (pagemap_scan(pm, p, len, &ndev, &nbad, &npres, &nmig)) {
			printf("# stress_hmm %s: pagemap read failed\n", name);
			return 2;
		}
		bad_pm += nbad;
		if (n > 0 && ndev != (size_t)n) {
			printf("# stress_hmm %s: round %lu: %ld pages migrated (%lu retries so far), pagemap shows %zu on the device, %zu present, %zu migrating\n",
			       name, rounds, n, retries, ndev, npres, nmig);
			bad_pm++;
			diagnose(fd, pm, p, len, rounds);
		}
		if (!strcmp(mode, "regcycle")) {
			if (dcmd(fd, HMM_DMIRROR_RELEASE, p, mirror, len, NULL) < 0) {
				printf("# stress_hmm %s: HMM_DMIRROR_RELEASE: %s\n", name, strerror(errno));
				bad_pm++;
			} else {
				releases++;
			}
			pagemap_scan(pm, p, len, &ndev, &nbad, &npres, &nmig);
			bad_pm += nbad;
			if (ndev) {
				printf("# stress_hmm %s: round %lu: %zu pages still on the device after release\n",
				       name, rounds, ndev);
				bad_pm++;
			}
			bad_bytes += check(p, len, s, "cpu after release");
			bytes_cpu += len;
		} else if (rounds % 4 == 0 && n == (long)(len / psz)) {
			/* The device's view of its own pages, then free them there. */
			memset(mirror, 0, len);
			if (dcmd(fd, HMM_DMIRROR_READ, p, mirror, len, NULL) != (long)(len / psz)) {
				printf("# stress_hmm %s: HMM_DMIRROR_READ failed\n", name);
				bad_pm++;
			} else {
				bad_bytes += check(mirror, len, s, "device read");
				bytes_dev += len;
			}
			munmap(p, len);
			p = NULL;
			unmapped_on_dev++;
		} else {
			bad_bytes += check(p, len, s, "cpu fault-back");
			bytes_cpu += len;
			pagemap_scan(pm, p, len, &ndev, &nbad, &npres, &nmig);
			/* Every page back in RAM; a page that memory offlining
			 * is migrating shows a migration entry meanwhile. */
			bad_pm += nbad;
			if (ndev || npres + nmig != len / psz) {
				printf("# stress_hmm %s: round %lu: after CPU reads %zu of %zu pages present, %zu migrating, %zu on the device\n",
				       name, rounds, npres, len / psz, nmig, ndev);
				bad_pm++;
			}
		}
		if (bad_bytes > 0)
			break;
	}
	printf("# stress_hmm %s: mode=%s dev=%s buf=%luMiB rounds=%lu full=%lu partial=%lu failed=%lu retries=%lu "
	       "pages_to_dev=%llu bytes_verified_cpu=%llu bytes_verified_dev=%llu releases=%lu unmapped_on_dev=%lu "
	       "migration_entries_seen=%llu bad_bytes=%zu bad_pagemap=%zu\n",
	       name, mode, dev, mib, rounds, full, partial, failed, retries, pages_to_dev,
	       bytes_cpu, bytes_dev, releases, unmapped_on_dev, transient, bad_bytes, bad_pm);
	return bad_bytes || bad_pm || !pages_to_dev || !rounds ? 1 : 0;
usage:
	fprintf(stderr, "usage: stress_hmm migrate|regcycle -d DEV -m MIB -t SECONDS [-s SEED] [-n NAME]\n"
		"       stress_hmm fwrite|fcheck -f FILE -m MIB [-s SEED]\n");
	return 2;
}
