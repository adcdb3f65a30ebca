// expect: E0597
// A migration cannot outlive the mmap read lock it was set up under.
fn case<T: DevPagemapOps>(mm: &MmWithUser, pagemap: &DevPagemap<T>) -> Result {
    let migration = {
        let guard = mm.mmap_read_lock();
        MigrateVma::setup(&guard, 0, 4096, MigrateSelect::System, pagemap)?
    };
    drop(migration);
    Ok(())
}
