// SPDX-License-Identifier: GPL-2.0

#include <linux/migrate.h>

#ifdef CONFIG_MIGRATION
__rust_helper struct page *rust_helper_migrate_pfn_to_page(unsigned long mpfn)
{
	return migrate_pfn_to_page(mpfn);
}

__rust_helper unsigned long rust_helper_migrate_pfn(unsigned long pfn)
{
	return migrate_pfn(pfn);
}
#endif
