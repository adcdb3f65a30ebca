// SPDX-License-Identifier: GPL-2.0
/*
 * Helper of hmm_hotplug.sh: keep data in test_hmm's device-private memory,
 * and keep migrating it, while the script adds and removes RAM.
 *
 *   hmm_hold [-d DEV] [-m MIB] [-r READY] [-s STOP] [-R] [-1]
 *
 * Fills MIB MiB (default 16) with a pattern and migrates it to DEV (default
 * /dev/hmm_dmirror0), then creates the file READY.  Until the file STOP
 * exists it moves the second half back and forth between the device and
 * system memory, checking the data the device returns each round.  Then,
 * with -R, it unregisters the device's memory (HMM_DMIRROR_RELEASE, which
 * evicts the pages), and finally checks every byte from the CPU.  -1 does a
 * single round and no waiting.  Exit 0 when all data was intact.
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
#include <sys/mman.h>

#include "dmirror.h"

static size_t page_size;

static long cmd(int fd, unsigned long req, char *addr, char *ptr, size_t len)
{
	struct hmm_dmirror_cmd c;
	int ret;

	ret = dmirror_ioctl(fd, req, addr, ptr, len / page_size, &c);
	return ret ? ret : (long)c.cpages;
}

/*
 * migrate_vma skips pages it cannot lock or isolate right now, e.g. while
 * memory offlining migrates them, and test_hmm then fails the whole call
 * (-ENOENT: a page the device does not mirror).  A device page whose
 * migration back failed can also be left without a mirror entry.  Touch
 * the range from the CPU, which brings every page to system memory, and
 * try again.
 */
static long to_device(int fd, char *p, char *mirror, size_t len)
{
	long n = 0;
	size_t off;
	int i;

	for (i = 0; i < 20; i++) {
		n = cmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, mirror, len);
		if (n == (long)(len / page_size))
			break;
		for (off = 0; off < len; off += page_size)
			(void)__atomic_load_n(p + off, __ATOMIC_RELAXED);
		usleep(10000);
	}
	if (i)
		printf("# hmm_hold: migration to the device took %d retries\n", i);
	return n;
}

static uint32_t pattern(uint32_t seed, size_t i)
{
	uint32_t x = (uint32_t)i * 2654435761u ^ seed;

	return x ^ (x >> 15);
}

static long check(const char *p, size_t off, size_t len, uint32_t seed)
{
	const uint32_t *w = (const uint32_t *)(p + off);
	size_t i;

	for (i = 0; i < len / 4; i++)
		if (w[i] != pattern(seed, off / 4 + i))
			return (long)(off + i * 4);
	return -1;
}

static int fail(const char *what, long v)
{
	printf("# hmm_hold: %s (%ld)\n", what, v);
	return 1;
}

int main(int argc, char **argv)
{
	const char *dev = "/dev/hmm_dmirror0", *ready = NULL, *stop = NULL;
	bool release = false, once = false;
	size_t size = 16UL << 20, half, i;
	unsigned long rounds = 0;
	uint32_t seed = getpid();
	char *p, *mirror;
	long n, bad;
	int fd, c;

	while ((c = getopt(argc, argv, "d:m:r:s:R1")) != -1) {
		switch (c) {
		case 'd':
			dev = optarg;
			break;
		case 'm':
			size = strtoul(optarg, NULL, 0) << 20;
			break;
		case 'r':
			ready = optarg;
			break;
		case 's':
			stop = optarg;
			break;
		case 'R':
			release = true;
			break;
		case '1':
			once = true;
			break;
		default:
			fprintf(stderr,
				"usage: %s [-d DEV] [-m MIB] [-r READY] [-s STOP] [-R] [-1]\n",
				argv[0]);
			return 2;
		}
	}
	page_size = sysconf(_SC_PAGESIZE);
	half = size / 2;
	fd = open(dev, O_RDWR);
	if (fd < 0)
		return fail(dev, -errno);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mirror = malloc(size);
	if (p == MAP_FAILED || !mirror)
		return fail("out of memory", -ENOMEM);
	for (i = 0; i < size / 4; i++)
		((uint32_t *)p)[i] = pattern(seed, i);

	n = to_device(fd, p, mirror, size);
	if (n != (long)(size / page_size))
		return fail("migration to the device", n);
	bad = check(mirror, 0, size, seed);
	if (bad >= 0)
		return fail("device data differs at offset", bad);
	if (ready)
		close(open(ready, O_CREAT | O_WRONLY, 0644));

	do {
		n = cmd(fd, HMM_DMIRROR_MIGRATE_TO_SYS, p + half, mirror + half, half);
		if (n < 0)
			return fail("migration to system memory", n);
		bad = check(p, half, half, seed);
		if (bad >= 0)
			return fail("CPU data differs at offset", bad);
		n = to_device(fd, p + half, mirror + half, half);
		if (n != (long)(half / page_size))
			return fail("migration to the device", n);
		memset(mirror, 0, size);
		n = cmd(fd, HMM_DMIRROR_READ, p, mirror, size);
		if (n != (long)(size / page_size))
			return fail("device read", n);
		bad = check(mirror, 0, size, seed);
		if (bad >= 0)
			return fail("device data differs at offset", bad);
		rounds++;
		if (!once)
			usleep(20000);
	} while (!once && stop && access(stop, F_OK));

	if (release) {
		n = cmd(fd, HMM_DMIRROR_RELEASE, p, NULL, page_size);
		if (n < 0)
			return fail("HMM_DMIRROR_RELEASE", n);
	}
	bad = check(p, 0, size, seed);
	if (bad >= 0)
		return fail("CPU data differs at offset", bad);
	printf("# hmm_hold: %s, %zu MiB, %lu rounds, data intact\n", dev,
	       size >> 20, rounds);
	return 0;
}
