// SPDX-License-Identifier: GPL-2.0
/*
 * Security checks for scripts/guest/security.sh: the pfns of the device
 * private pfn window (live device pages of test_hmm) must not be reachable
 * from userspace.  Prints KTAP ('ok N', 'not ok N', '# Totals').
 *
 *   sec_probe [-d DEV] [-m MIB]
 *
 * Migrates MIB MiB (default 8) of its own memory to DEV (default
 * /dev/hmm_dmirror0), learns the window pfns of those device pages from its
 * own /proc/self/pagemap (root), and then tries every interface with them.
 * Each check prints what it observed.  Controls on an ordinary RAM page show
 * that each interface works at all, so a check cannot pass by accident.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

/* dmirror_ioctl(): the selftests' wrapper, from the series tree (-I). */
#include <tools/testing/selftests/hmm/dmirror.h>
#include "pagemap.h"

#define NOBODY		65534

static size_t psz;
static int tn, tpass, tfail, tskip;

static void ok(int pass, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void ok(int pass, const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("# %s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	tn++;
	if (pass) {
		tpass++;
		printf("ok %d %s\n", tn, name);
	} else {
		tfail++;
		printf("not ok %d %s\n", tn, name);
	}
	fflush(stdout);
}

static void skip(const char *name, const char *why)
{
	tn++;
	tskip++;
	printf("ok %d %s # SKIP %s\n", tn, name, why);
	fflush(stdout);
}

/* Device private reservations ("  start-end : name" under the window). */
struct range { unsigned long long s, e; };
static struct range win, res[256];
static int nres;

static int read_device_private(void)
{
	FILE *f = fopen("/sys/kernel/debug/device_private", "r");
	char line[256];
	int first = 1;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e;

		if (sscanf(line, " %llx-%llx", &s, &e) != 2)
			continue;
		if (first) {
			win.s = s;
			win.e = e;
			first = 0;
		} else if (nres < 256) {
			res[nres].s = s;
			res[nres++].e = e;
		}
	}
	fclose(f);
	return first ? -EINVAL : 0;
}

static int in_reservation(unsigned long long pfn)
{
	unsigned long long a = pfn * psz;

	for (int i = 0; i < nres; i++)
		if (a >= res[i].s && a <= res[i].e)
			return 1;
	return 0;
}

/* pread of one u64 entry; returns bytes read or -errno. */
static long pread_entry(int fd, unsigned long long pfn, uint64_t *v)
{
	ssize_t r;

	*v = 0;
	r = pread(fd, v, 8, (off_t)(pfn * 8));
	return r < 0 ? -errno : r;
}

/* First pfn at which FILE reads EOF (binary search), or 0 on error. */
static unsigned long long eof_pfn(int fd)
{
	unsigned long long lo = 0, hi = 1ULL << 52;
	uint64_t v;

	while (lo < hi) {
		unsigned long long mid = lo + (hi - lo) / 2;

		if (pread_entry(fd, mid, &v) == 8)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static long dcmd(int fd, unsigned long req, void *addr, void *ptr, size_t len)
{
	struct hmm_dmirror_cmd c;
	int ret = dmirror_ioctl(fd, req, addr, ptr, len / psz, &c);

	return ret ? ret : (long)c.cpages;
}

/* Checks one kpage* file with the device pfns and the window bounds. */
static unsigned long long dev_lo, dev_hi;

static void kpage_case(const char *file, const char *name, unsigned long long *pfns,
		       int npfns, unsigned long long ram_pfn)
{
	int fd = open(file, O_RDONLY);
	unsigned long long eof, bad = 0, zero = 0, eofs = 0, errs = 0;
	unsigned long long probe[8];
	int np = 0;
	uint64_t v, ctl;
	long r, rc;

	if (fd < 0) {
		char why[128];

		snprintf(why, sizeof(why), "%s: %s (kernel config lacks it)", file, strerror(errno));
		skip(name, why);
		return;
	}
	rc = pread_entry(fd, ram_pfn, &ctl);
	eof = eof_pfn(fd);
	for (int i = 0; i < npfns; i++)
		probe[np++] = pfns[i];
	probe[np++] = win.s / psz;
	probe[np++] = (win.e + 1) / psz - 1;
	for (int i = 0; i < np; i++) {
		r = pread_entry(fd, probe[i], &v);
		if (r == 0)
			eofs++;
		else if (r == 8 && v == 0)
			zero++;
		else if (r < 0 && (r == -EINVAL || r == -ENXIO || r == -EFAULT))
			errs++;
		else {
			if (!bad)
				printf("# %s: pfn 0x%llx: read %ld, value 0x%016llx\n",
				       name, probe[i], r, (unsigned long long)v);
			bad++;
		}
	}
	close(fd);
	ok(!bad && rc == 8, name,
	   "%d window pfns (device pages 0x%llx..0x%llx, window 0x%llx..0x%llx): %llu EOF, %llu zero, "
	   "%llu clean errors, %llu leaking; EOF at pfn 0x%llx; control RAM pfn 0x%llx: read %ld value 0x%llx",
	   np, dev_lo, dev_hi, win.s / psz, (win.e + 1) / psz - 1, eofs, zero, errs, bad,
	   eof, ram_pfn, rc, (unsigned long long)ctl);
}

/* Unprivileged open of a root-only file must fail. */
static void unpriv_open_case(const char *file, const char *name)
{
	int st, pfd[2];
	char buf[64] = "";
	pid_t pid;

	if (access(file, F_OK)) {
		skip(name, "file does not exist");
		return;
	}
	if (pipe(pfd))
		return;
	pid = fork();
	if (!pid) {
		int fd, e;

		close(pfd[0]);
		if (setgid(NOBODY) || setuid(NOBODY))
			_exit(3);
		fd = open(file, O_RDONLY);
		e = fd < 0 ? errno : 0;
		dprintf(pfd[1], "%d", e);
		_exit(fd < 0 ? 0 : 1);
	}
	close(pfd[1]);
	read(pfd[0], buf, sizeof(buf) - 1);
	close(pfd[0]);
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, name, "uid %d open(%s): %s", NOBODY, file,
	   atoi(buf) ? strerror(atoi(buf)) : "succeeded");
}

int main(int argc, char **argv)
{
	const char *dev = "/dev/hmm_dmirror0";
	unsigned long mib = 8;
	unsigned long long ram_pfn = 0, *pfns;
	size_t len, n;
	uint64_t *pm_root, *pm_user;
	uint8_t *p, *mirror;
	int opt, fd, pm, npfns = 0;
	long r;

	while ((opt = getopt(argc, argv, "d:m:")) != -1) {
		if (opt == 'd')
			dev = optarg;
		else if (opt == 'm')
			mib = strtoul(optarg, NULL, 0);
		else
			return 2;
	}
	psz = sysconf(_SC_PAGESIZE);
	len = mib << 20;
	n = len / psz;
	printf("TAP version 13\n1..11\n");
	if (read_device_private()) {
		printf("Bail out! no /sys/kernel/debug/device_private\n");
		return 1;
	}
	fd = open(dev, O_RDWR);
	pm = open("/proc/self/pagemap", O_RDONLY);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mirror = malloc(len);
	pm_root = calloc(n, 8);
	pm_user = calloc(n, 8);
	pfns = calloc(n, sizeof(*pfns));
	if (fd < 0 || pm < 0 || p == MAP_FAILED || !mirror || !pm_root || !pm_user || !pfns) {
		printf("Bail out! setup: %s\n", strerror(errno));
		return 1;
	}
	memset(p, 0x5a, len);

	/* 1. control: a RAM page of ours shows its frame to root. */
	pread(pm, pm_root, 8, (uintptr_t)p / psz * 8);
	ram_pfn = pm_root[0] & PM_PFRAME;
	ok((pm_root[0] & PM_PRESENT) && ram_pfn && ram_pfn < win.s / psz, "control_pagemap_ram_page",
	   "RAM page entry 0x%016llx, pfn 0x%llx", (unsigned long long)pm_root[0], ram_pfn);

	/* Move the buffer to the device. */
	r = dcmd(fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, mirror, len);
	if (r != (long)n) {
		printf("Bail out! migration to %s: %ld of %zu pages\n", dev, r, n);
		return 1;
	}
	read_device_private();

	/* 2. root's pagemap: non-present entries naming window pfns of our own
	 * device pages, never a present frame. */
	{
		size_t present = 0, swap = 0, inres = 0, other = 0;
		unsigned long long lo = ~0ULL, hi = 0;

		pread(pm, pm_root, n * 8, (uintptr_t)p / psz * 8);
		for (size_t i = 0; i < n; i++) {
			uint64_t e = pm_root[i];
			unsigned long long pfn = (e & PM_PFRAME) >> SWP_TYPE_BITS;

			if (e & PM_PRESENT) {
				present++;
			} else if (e & PM_SWAP) {
				unsigned int t = e & ((1 << SWP_TYPE_BITS) - 1);

				swap++;
				if ((t == SWP_DEVICE_WRITE || t == SWP_DEVICE_READ) && in_reservation(pfn)) {
					inres++;
					pfns[npfns++] = pfn;
					lo = pfn < lo ? pfn : lo;
					hi = pfn > hi ? pfn : hi;
				}
			} else {
				other++;
			}
		}
		ok(present == 0 && swap == n && inres == n, "pagemap_root_device_pages",
		   "%zu pages on the device: %zu present, %zu swap-type entries (type of the first %llu), %zu device "
		   "private entries with a pfn in a /sys/kernel/debug/device_private reservation (pfns 0x%llx..0x%llx), %zu other; first entry 0x%016llx",
		   n, present, swap, (unsigned long long)(pm_root[0] & ((1 << SWP_TYPE_BITS) - 1)), inres,
		   lo, hi, other, (unsigned long long)pm_root[0]);
		if (!npfns) {
			printf("Bail out! no device pfns from pagemap\n");
			return 1;
		}
		dev_lo = lo;
		dev_hi = hi;
		/* Probe the lowest, the highest and a middle one. */
		pfns[1 % npfns] = hi;
		pfns[0] = lo;
		npfns = npfns > 1 ? 2 : 1;
		/* plus a middle one */
		if (hi > lo) {
			pfns[npfns++] = lo + (hi - lo) / 2;
		}
	}

	/* 3. unprivileged pagemap: no frame at all. */
	{
		int st, pfd[2];
		pid_t pid;
		size_t got = 0, withframe = 0, swap = 0;

		if (pipe(pfd))
			return 1;
		pid = fork();
		if (!pid) {
			int upm;

			close(pfd[0]);
			if (setgid(NOBODY) || setuid(NOBODY))
				_exit(3);
			/* The uid change made us non-dumpable: /proc/self/ files
			 * would be root's.  A normal user process is dumpable. */
			prctl(PR_SET_DUMPABLE, 1);
			upm = open("/proc/self/pagemap", O_RDONLY);
			if (upm < 0 || pread(upm, pm_user, n * 8, (uintptr_t)p / psz * 8) != (ssize_t)(n * 8))
				_exit(4);
			write(pfd[1], pm_user, n * 8);
			_exit(0);
		}
		close(pfd[1]);
		while (got < n * 8) {
			ssize_t k = read(pfd[0], (char *)pm_user + got, n * 8 - got);

			if (k <= 0)
				break;
			got += k;
		}
		close(pfd[0]);
		waitpid(pid, &st, 0);
		for (size_t i = 0; i < got / 8; i++) {
			withframe += (pm_user[i] & PM_PFRAME) != 0;
			swap += (pm_user[i] & PM_SWAP) != 0;
		}
		ok(WIFEXITED(st) && WEXITSTATUS(st) == 0 && got == n * 8 && withframe == 0, "pagemap_unprivileged",
		   "uid %d, forked copy of the device-backed buffer: %zu entries read, %zu swap-type, %zu with a "
		   "nonzero frame field (exit %d)", NOBODY, got / 8, swap, withframe,
		   WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	}

	/* 4-6. /proc/kpage* at the window pfns. */
	kpage_case("/proc/kpageflags", "kpageflags_window_pfns", pfns, npfns, ram_pfn);
	kpage_case("/proc/kpagecount", "kpagecount_window_pfns", pfns, npfns, ram_pfn);
	kpage_case("/proc/kpagecgroup", "kpagecgroup_window_pfns", pfns, npfns, ram_pfn);

	/* 7. unprivileged users cannot open kpageflags at all. */
	unpriv_open_case("/proc/kpageflags", "kpageflags_unprivileged_open");

	/* 8. /dev/mem at the window's physical addresses. */
	{
		const char *mem = "/dev/mem";
		int mfd;

		if (access(mem, F_OK)) {
			mknod("/tmp/sec_mem", S_IFCHR | 0600, makedev(1, 1));
			mem = "/tmp/sec_mem";
		}
		mfd = open(mem, O_RDONLY);
		if (mfd < 0) {
			char why[160];

			snprintf(why, sizeof(why), "no /dev/mem: open of char 1:1 gives %s (CONFIG_DEVMEM=n)",
				 strerror(errno));
			skip("dev_mem_window_pfns", why);
		} else {
			unsigned long long a = pfns[0] * psz;
			uint64_t v = 0;
			ssize_t rr = pread(mfd, &v, 8, (off_t)a);
			int re = errno;
			void *mp = mmap(NULL, psz, PROT_READ, MAP_SHARED, mfd, (off_t)a);
			int me = errno;
			uint64_t c = 0;
			ssize_t rc = pread(mfd, &c, 8, (off_t)(ram_pfn * psz));

			ok(rr <= 0 && mp == MAP_FAILED, "dev_mem_window_pfns",
			   "pread at 0x%llx: %zd (%s), mmap: %s; control pread at RAM 0x%llx: %zd",
			   a, rr, rr < 0 ? strerror(re) : "", mp == MAP_FAILED ? strerror(me) : "MAPPED",
			   ram_pfn * psz, rc);
			if (mp != MAP_FAILED)
				munmap(mp, psz);
			close(mfd);
		}
	}

	/* 9-10. memory/probe at the window's first address and at a live
	 * reservation: must be refused, no memory block appears. */
	{
		const char *probe = "/sys/devices/system/memory/probe";
		unsigned long long addrs[2] = { win.s, pfns[0] * psz };
		const char *names[2] = { "memory_probe_window_start", "memory_probe_live_device_range" };
		unsigned long long bs = 0;
		FILE *f = fopen("/sys/devices/system/memory/block_size_bytes", "r");

		if (f) {
			fscanf(f, "%llx", &bs);
			fclose(f);
		}
		for (int i = 0; i < 2; i++) {
			unsigned long long a = bs ? addrs[i] / bs * bs : addrs[i];
			char buf[64], blk[96];
			int pf = open(probe, O_WRONLY);
			ssize_t w;
			int e;

			if (pf < 0) {
				skip(names[i], "no memory/probe (CONFIG_ARCH_MEMORY_PROBE)");
				continue;
			}
			snprintf(buf, sizeof(buf), "0x%llx", a);
			w = write(pf, buf, strlen(buf));
			e = errno;
			close(pf);
			snprintf(blk, sizeof(blk), "/sys/devices/system/memory/memory%llu", bs ? a / bs : 0);
			ok(w < 0 && access(blk, F_OK), names[i], "write %s: %s; %s %s", buf,
			   w < 0 ? strerror(e) : "ACCEPTED", blk, access(blk, F_OK) ? "absent" : "EXISTS");
		}
	}

	/* 11. the data is still ours after all that, read from the CPU. */
	{
		size_t bad = 0;

		for (size_t i = 0; i < len; i++)
			bad += p[i] != 0x5a;
		ok(!bad, "device_data_intact", "%zu bytes read back from the device by CPU faults, %zu wrong",
		   len, bad);
	}
	printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:%d error:0\n", tpass, tfail, tskip);
	return tfail ? 1 : 0;
}
