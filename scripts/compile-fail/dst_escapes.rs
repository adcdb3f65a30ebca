// expect: E0521|borrowed data escapes|lifetime may not live long enough
// The driver cannot keep the destination page to write it after the
// migration took it over.
fn case(migration: &mut MigrateVma<'_>) -> Result {
    let mut kept = None;
    migration.set_dst_system(0, |dst| {
        kept = Some(dst);
        Ok(())
    })?;
    drop(kept);
    Ok(())
}
