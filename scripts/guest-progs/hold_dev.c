// SPDX-License-Identifier: GPL-2.0
/*
 * Keep pages of a process on a device while its driver goes away, for
 * scripts/guest/rust_teardown.sh (built with gcc -static on the host by
 * scripts/guest/faultinject.sh build).
 *
 *   hold_dev DEV NPAGES READY STOP
 *
 * Fills NPAGES pages with a pattern, migrates them to DEV
 * (HMM_DMIRROR_MIGRATE_TO_DEV, up to 10 tries), closes DEV (so that its module can be
 * unloaded) and creates the file READY.  When the file STOP exists, it
 * checks every byte from the CPU, which faults back whatever is still on a
 * device.  Prints one 'result ...' line; exit 0 when the data is intact, 1
 * when not, 2 on a setup error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

/* dmirror_ioctl(): the selftests' wrapper, from the series tree (-I). */
#include <tools/testing/selftests/hmm/dmirror.h>

static unsigned char pattern(size_t off)
{
	return (unsigned char)(off / 4096 * 7 + off % 251 + 3);
}

int main(int argc, char **argv)
{
	size_t page_size = sysconf(_SC_PAGESIZE), npages, size, i;
	struct hmm_dmirror_cmd cmd;
	unsigned char *p, *mirror;
	int fd, ret;

	if (argc != 5) {
		fprintf(stderr, "usage: hold_dev DEV NPAGES READY STOP\n");
		return 2;
	}
	npages = strtoul(argv[2], NULL, 0);
	size = npages * page_size;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	mirror = malloc(size);
	if (p == MAP_FAILED || !mirror || !npages) {
		printf("result setup: no memory\n");
		return 2;
	}
	for (i = 0; i < size; i++)
		p[i] = pattern(i);
	fd = open(argv[1], O_RDWR);
	if (fd < 0) {
		printf("result setup: open %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	/*
	 * Pages just faulted in may still sit in another CPU's LRU batch,
	 * where migration cannot isolate them: try again (ENOENT: a page did
	 * not move).
	 */
	for (i = 0; i < 10; i++) {
		ret = dmirror_ioctl(fd, HMM_DMIRROR_MIGRATE_TO_DEV, p, mirror,
				    npages, &cmd);
		if (ret != -ENOENT)
			break;
		usleep(10 * 1000);
	}
	if (ret || cmd.cpages != npages) {
		printf("result setup: migration: %d, %llu of %zu pages\n", ret,
		       (unsigned long long)cmd.cpages, npages);
		return 2;
	}
	close(fd);
	fd = open(argv[3], O_CREAT | O_WRONLY, 0644);
	if (fd < 0) {
		printf("result setup: %s: %s\n", argv[3], strerror(errno));
		return 2;
	}
	close(fd);
	while (access(argv[4], F_OK))
		usleep(100 * 1000);
	for (i = 0; i < size; i++) {
		if (p[i] != pattern(i)) {
			printf("result corrupt at page %zu byte %zu: %#x, not %#x\n",
			       i / page_size, i % page_size, p[i], pattern(i));
			return 1;
		}
	}
	printf("result intact %zu pages\n", npages);
	return 0;
}
