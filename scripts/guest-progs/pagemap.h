/* SPDX-License-Identifier: GPL-2.0 */
/*
 * /proc/self/pagemap entries of non-present pages, for the guest programs
 * that look for device private and migration entries of the pfn window.
 *
 * Swap types of non-swap entries with the series (include/linux/swap.h), the
 * top of the 5-bit type space, the same with and without
 * CONFIG_MEMORY_FAILURE: physical migration entries (READ, READ_EXCLUSIVE,
 * WRITE), the physical device types, the PTE marker, then the window types
 * in the same order: migration entries of window pfns and device private
 * entries of window pfns, SWP_WINDOW_TYPE(SWP_DEVICE_WRITE) and
 * (SWP_DEVICE_READ), the last two.  (25-27 and 28-29 are the migration and
 * device types of 7.3 without the series; with it 28 and 29 are window
 * migration types.)
 */
#ifndef SMDM_PAGEMAP_H
#define SMDM_PAGEMAP_H

#define PM_PRESENT	(1ULL << 63)
#define PM_SWAP		(1ULL << 62)
#define PM_PFRAME	((1ULL << 55) - 1)
#define SWP_TYPE_BITS	5
#define SWP_MIGRATION_FIRST	((1 << SWP_TYPE_BITS) - 12)
#define SWP_MIGRATION_LAST	((1 << SWP_TYPE_BITS) - 10)
#define SWP_WINDOW_MIGRATION_FIRST ((1 << SWP_TYPE_BITS) - 5)
#define SWP_WINDOW_MIGRATION_LAST ((1 << SWP_TYPE_BITS) - 3)
#define SWP_DEVICE_WRITE	((1 << SWP_TYPE_BITS) - 2)
#define SWP_DEVICE_READ		((1 << SWP_TYPE_BITS) - 1)

#endif
