// expect: lifetime may not live long enough|E0597|E0621
// A destination page must come from a pagemap that outlives the migration.
fn case<'a, T: DevPagemapOps>(migration: &mut MigrateVma<'a>, pagemap: &DevPagemap<T>) -> Result {
    let page = pagemap.alloc_page()?;
    migration.set_dst_device(0, page)
}
