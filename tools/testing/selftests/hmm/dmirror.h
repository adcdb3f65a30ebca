/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The range commands of a dmirror device (lib/test_hmm_uapi.h), shared by the
 * programs of this directory.
 */
#ifndef __SELFTESTS_HMM_DMIRROR_H
#define __SELFTESTS_HMM_DMIRROR_H

#include <errno.h>
#include <stdint.h>
#include <sys/ioctl.h>

#include <lib/test_hmm_uapi.h>

/*
 * Runs the command @req of the device open on @fd for @npages pages at @addr,
 * with @ptr as the device side's buffer.  Returns 0 or -errno; *@out (if
 * @out is not NULL) gets the command as the device left it, counters
 * included, in both cases.
 */
static inline int dmirror_ioctl(int fd, unsigned long req, void *addr,
				void *ptr, unsigned long npages,
				struct hmm_dmirror_cmd *out)
{
	struct hmm_dmirror_cmd cmd = {
		.addr = (uintptr_t)addr,
		.ptr = (uintptr_t)ptr,
		.npages = npages,
	};
	int ret;

	do {
		ret = ioctl(fd, req, &cmd);
	} while (ret == -1 && errno == EINTR);
	if (out)
		*out = cmd;
	return ret ? -errno : 0;
}

#endif /* __SELFTESTS_HMM_DMIRROR_H */
