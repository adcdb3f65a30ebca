// expect: builds
// The control: the intended use builds, so the failures below are about
// what they change, not about the harness.
fn case<T: DevPagemapOps>(mm: &MmWithUser, pagemap: &DevPagemap<T>) -> Result {
    let guard = mm.mmap_read_lock();
    let mut migration = MigrateVma::setup(&guard, 0, 4096, MigrateSelect::System, pagemap)?;
    let page = pagemap.alloc_page()?;
    migration.set_dst_device(0, page)?;
    migration.migrate();
    drop(migration);
    drop(guard);
    Ok(())
}
