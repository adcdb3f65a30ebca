// SPDX-License-Identifier: GPL-2.0
/*
 * HMM_DMIRROR_READ of device private pages that the mirror lost, for
 * scripts/guest/devread.sh: the path patches/1-fixes/0001 fixes.  Built
 * with gcc -static on the host (-I the kernel source, for
 * lib/test_hmm_uapi.h); prints KTAP.
 *
 *   hmm_devread [DEV [NPAGES]]      (default /dev/hmm_dmirror0, 16 pages)
 *
 *  1. NPAGES pages with a pattern migrate to DEV (HMM_DMIRROR_MIGRATE_TO_DEV):
 *     every page must be a device private entry in /proc/self/pagemap;
 *  2. control: HMM_DMIRROR_READ finds the mirror's entries (0 faults) and
 *     returns the pattern;
 *  3. mprotect(PROT_READ) and back: an MMU_NOTIFY_PROTECTION_VMA
 *     invalidation, which dmirror_interval_invalidate() does not ignore,
 *     empties the mirror while the pages stay on the device (checked);
 *  4. HMM_DMIRROR_READ again: the mirror faults the range (faults >= 1),
 *     hmm_range_fault() returns the device's own private pages, and the
 *     read must return the pattern, with the pages still on the device
 *     afterwards (the read went through that path, nothing migrated back).
 *     Unfixed test_hmm stores the device private page itself in the mirror
 *     and dmirror_do_read() copies from its direct map address, which
 *     maps nothing: an oops.  Before that read this prints
 *       @@SMDM-OOPS-EXPECT unable to handle page fault for address: ADDR
 *     ADDR being the direct map address of the first page read
 *     (page_offset_base from /proc/kcore's RAM segments + its pfn), which
 *     scripts/summarize (item 'oops') requires in the base kernel's oops
 *     (no "BUG: " here: scripts/vm would count the line as a kernel report);
 *  5. the CPU faults the pages back with the pattern.
 * Exit 0 when every check passed, 1 otherwise, 2 on a setup error.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <lib/test_hmm_uapi.h>

#define PM_PFRAME_MASK		((1ULL << 55) - 1)
#define PM_SWAP			(1ULL << 62)
#define PM_PRESENT		(1ULL << 63)
#define PM_SWP_TYPE_BITS	5
/* Swap types from MAX_SWAPFILES up are special (device, migration, ...). */
#define PM_SWP_TYPE_SPECIAL_MIN	((1U << PM_SWP_TYPE_BITS) - 8)

#define NTESTS 5

static size_t psz;
static int tn, tpass, tfail;

static void result(int pass, const char *name)
{
	tn++;
	pass ? tpass++ : tfail++;
	printf("%s %d %s\n", pass ? "ok" : "not ok", tn, name);
	fflush(stdout);
}

static unsigned char pattern(size_t off)
{
	return (unsigned char)(off / 4096 * 13 + off % 253 + 1);
}

static size_t bad_bytes(const unsigned char *p, size_t len)
{
	size_t bad = 0;

	for (size_t i = 0; i < len; i++)
		bad += p[i] != pattern(i);
	return bad;
}

/* Pages of [p, p + n pages) that are device entries (special swap type with
 * a pfn); the first one's pfn in *first. */
static size_t device_pages(int pm, const char *p, size_t n, unsigned long long *first)
{
	uint64_t e;
	size_t count = 0;

	for (size_t i = 0; i < n; i++) {
		if (pread(pm, &e, 8, ((uintptr_t)p / psz + i) * 8) != 8)
			return 0;
		if ((e & PM_PRESENT) || !(e & PM_SWAP) ||
		    (e & ((1U << PM_SWP_TYPE_BITS) - 1)) < PM_SWP_TYPE_SPECIAL_MIN)
			continue;
		if (!count && first)
			*first = (e & PM_PFRAME_MASK) >> PM_SWP_TYPE_BITS;
		count++;
	}
	return count;
}

/* page_offset_base: p_vaddr - p_paddr of a direct map (RAM) segment of
 * /proc/kcore.  0 when there is none. */
static unsigned long long direct_map_base(void)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	int fd = open("/proc/kcore", O_RDONLY);
	unsigned long long base = 0;

	if (fd < 0)
		return 0;
	if (pread(fd, &eh, sizeof(eh), 0) == sizeof(eh)) {
		for (int i = 0; i < eh.e_phnum && !base; i++) {
			if (pread(fd, &ph, sizeof(ph), eh.e_phoff + i * sizeof(ph)) != sizeof(ph))
				break;
			/* RAM: a physical address, below the kernel image mapping. */
			if (ph.p_type == PT_LOAD && ph.p_paddr != (Elf64_Addr)-1 &&
			    ph.p_vaddr < 0xffffffff80000000ULL)
				base = ph.p_vaddr - ph.p_paddr;
		}
	}
	close(fd);
	return base;
}

static int dmirror(int fd, unsigned long req, void *addr, void *ptr, size_t npages,
		   struct hmm_dmirror_cmd *cmd)
{
	memset(cmd, 0, sizeof(*cmd));
	cmd->addr = (uintptr_t)addr;
	cmd->ptr = (uintptr_t)ptr;
	cmd->npages = npages;
	return ioctl(fd, req, cmd) ? -errno : 0;
}

int main(int argc, char **argv)
{
	const char *dev = argc > 1 ? argv[1] : "/dev/hmm_dmirror0";
	size_t n = argc > 2 ? strtoul(argv[2], NULL, 0) : 16, len, on, bad;
	unsigned long long pfn = 0, base;
	struct hmm_dmirror_cmd cmd;
	unsigned char *p, *mirror;
	int fd, pm, ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	psz = sysconf(_SC_PAGESIZE);
	len = n * psz;
	printf("TAP version 13\n1..%d\n", NTESTS);
	fd = open(dev, O_RDWR);
	pm = open("/proc/self/pagemap", O_RDONLY);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mirror = malloc(len);
	if (fd < 0 || pm < 0 || p == MAP_FAILED || !mirror || !n) {
		printf("Bail out! setup (%s, pagemap, %zu pages): %s\n", dev, n, strerror(errno));
		return 2;
	}
	/* Small pages: no THP that the migration would split or keep whole. */
	madvise(p, len, MADV_NOHUGEPAGE);
	for (size_t i = 0; i < len; i++)
		p[i] = pattern(i);

	/* 1. */
	ret = dmirror(fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, mirror, n, &cmd);
	on = device_pages(pm, (char *)p, n, &pfn);
	printf("# migrate to %s: ioctl %d, cpages %llu, %zu of %zu pages on the device, first pfn %#llx\n",
	       dev, ret, (unsigned long long)cmd.cpages, on, n, pfn);
	result(!ret && on == n, "migrate_to_dev");
	if (ret || on != n) {
		printf("Bail out! the pages are not on the device\n");
		return 1;
	}

	/* 2. */
	memset(mirror, 0, len);
	ret = dmirror(fd, HMM_DMIRROR_READ, p, mirror, n, &cmd);
	bad = bad_bytes(mirror, len);
	printf("# read with the mirror's entries: ioctl %d, cpages %llu, faults %llu, %zu bytes wrong\n",
	       ret, (unsigned long long)cmd.cpages, (unsigned long long)cmd.faults, bad);
	result(!ret && cmd.cpages == n && cmd.faults == 0 && !bad, "read_mirrored");

	/* 3. */
	ret = mprotect(p, len, PROT_READ) || mprotect(p, len, PROT_READ | PROT_WRITE) ? -errno : 0;
	on = device_pages(pm, (char *)p, n, NULL);
	printf("# mprotect(PROT_READ) and back: %d, %zu of %zu pages still on the device\n", ret, on, n);
	result(!ret && on == n, "invalidate_keeps_device_pages");

	/* 4. */
	base = direct_map_base();
	printf("# page_offset_base %#llx (from /proc/kcore), device pfn %#llx\n", base, pfn);
	if (base)
		printf("@@SMDM-OOPS-EXPECT unable to handle page fault for address: %016llx\n",
		       base + pfn * psz);
	else
		printf("# no direct map segment in /proc/kcore: no oops address to expect\n");
	/* The console shows the lines above before an oops of the read. */
	fflush(stdout);
	tcdrain(STDOUT_FILENO);
	usleep(100000);
	memset(mirror, 0, len);
	ret = dmirror(fd, HMM_DMIRROR_READ, p, mirror, n, &cmd);
	bad = bad_bytes(mirror, len);
	on = device_pages(pm, (char *)p, n, NULL);
	printf("# read after the invalidation: ioctl %d, cpages %llu, faults %llu, %zu bytes wrong, %zu of %zu pages still on the device\n",
	       ret, (unsigned long long)cmd.cpages, (unsigned long long)cmd.faults, bad, on, n);
	result(!ret && cmd.cpages == n && cmd.faults >= 1 && !bad && on == n,
	       "read_device_pages_after_invalidation");

	/* 5. */
	bad = bad_bytes(p, len);
	on = device_pages(pm, (char *)p, n, NULL);
	printf("# CPU read: %zu bytes wrong, %zu pages left on the device\n", bad, on);
	result(!bad && on == 0, "cpu_faults_back");

	printf("# Totals: pass:%d fail:%d xfail:0 xpass:0 skip:0 error:0\n", tpass, tfail);
	return tfail ? 1 : 0;
}
