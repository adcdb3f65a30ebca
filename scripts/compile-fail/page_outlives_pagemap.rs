// expect: E0505
// A device page cannot outlive its pagemap, whose drop would wait for it.
fn case<T: DevPagemapOps>(pagemap: Pin<KBox<DevPagemap<T>>>) -> Result {
    let page = pagemap.alloc_page()?;
    drop(pagemap);
    drop(page);
    Ok(())
}
