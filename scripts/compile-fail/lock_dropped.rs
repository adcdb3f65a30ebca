// expect: E0505
// The mmap read lock cannot be released while a migration uses it.
fn case<T: DevPagemapOps>(mm: &MmWithUser, pagemap: &DevPagemap<T>) -> Result {
    let guard = mm.mmap_read_lock();
    let migration = MigrateVma::setup(&guard, 0, 4096, MigrateSelect::System, pagemap)?;
    drop(guard);
    drop(migration);
    Ok(())
}
