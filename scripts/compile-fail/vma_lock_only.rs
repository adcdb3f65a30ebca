// expect: E0308
// A VMA locked with the per-VMA lock only (lock_vma_under_rcu()) is not
// enough: migrate_vma_setup() needs the mmap lock.
fn case<T: DevPagemapOps>(mm: &MmWithUser, pagemap: &DevPagemap<T>) -> Result {
    let vma = mm.lock_vma_under_rcu(0).ok_or(EINVAL)?;
    let migration = MigrateVma::setup(&vma, 0, 4096, MigrateSelect::System, pagemap)?;
    drop(migration);
    Ok(())
}
