// expect: E0599
// There is no way to hand a Page (which may be mapped or shared) in as a
// destination: the migration allocates system memory destinations itself.
fn case(migration: &mut MigrateVma<'_>) -> Result {
    let page = Page::alloc_page(GFP_KERNEL)?;
    migration.set_dst_page(0, page)
}
