// SPDX-License-Identifier: GPL-2.0

#include <linux/memremap.h>
#include <linux/mm.h>
#include <linux/pagemap.h>

#ifdef CONFIG_DEVICE_PRIVATE
__rust_helper struct dev_pagemap *rust_helper_page_pgmap(const struct page *page)
{
	return page_pgmap(page);
}

__rust_helper bool rust_helper_is_device_private_page(const struct page *page)
{
	return is_device_private_page(page);
}

__rust_helper unsigned long rust_helper_page_to_pfn(const struct page *page)
{
	return page_to_pfn(page);
}

__rust_helper struct page *rust_helper_pfn_to_page(unsigned long pfn)
{
	return pfn_to_page(pfn);
}

__rust_helper void rust_helper_lock_page(struct page *page)
{
	lock_page(page);
}

__rust_helper void rust_helper_unlock_page(struct page *page)
{
	unlock_page(page);
}

__rust_helper void rust_helper_put_page(struct page *page)
{
	put_page(page);
}
#endif
