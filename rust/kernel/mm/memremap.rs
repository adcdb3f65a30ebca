// SPDX-License-Identifier: GPL-2.0

//! Device-private memory (`MEMORY_DEVICE_PRIVATE`, used by HMM).
//!
//! A device with memory that the CPU cannot address directly (for example GPU memory) can let
//! the kernel migrate the pages of a process to that memory. The kernel then represents the
//! device memory with `struct page`s whose pfns do not belong to any CPU physical address: with
//! `CONFIG_DEVICE_PRIVATE_PFN_WINDOW` they are taken from a window above the largest physical
//! address (`/proc/device_private`).
//!
//! A driver first reserves a range of such pfns with [`DevicePrivateRegion`], then creates the
//! `struct page`s for it with [`DevPagemap`], whose callbacks ([`DevPagemapOps`]) free device
//! pages and migrate them back to system memory when the CPU touches them.
//!
//! C header: [`include/linux/memremap.h`](srctree/include/linux/memremap.h)

use crate::{
    alloc::{
        flags::GFP_KERNEL,
        KVVec, //
    },
    bindings,
    error::{
        from_err_ptr,
        Result, //
    },
    ffi::c_void,
    io::resource::Resource,
    mm::fault::{
        to_vm_fault_t,
        VmFault, //
    },
    new_spinlock,
    page::PAGE_SHIFT,
    prelude::*,
    sync::SpinLock,
    types::{
        ForeignOwnable,
        Opaque, //
    },
};
use core::{
    marker::PhantomData,
    mem::ManuallyDrop,
    ops::Deref,
    ptr::NonNull, //
};

/// A range of device-private pfns, reserved with `request_device_private_region()`.
///
/// The range is aligned to and a multiple of the memory section size (128 MiB on x86-64). With
/// the device-private pfn window it lies above all physical memory, otherwise it is taken from
/// the top of the physical address space. It is released when the object is dropped.
///
/// # Invariants
///
/// `res` points to a valid `struct resource` returned by `request_device_private_region()`, owned
/// by this object and not released yet.
///
/// # Examples
///
/// ```
/// use kernel::mm::memremap::DevicePrivateRegion;
/// use kernel::page::PAGE_SIZE;
///
/// let region = DevicePrivateRegion::new(PAGE_SIZE, c"rust_doctest")?;
/// // The size is rounded up to a whole memory section.
/// assert!(region.size() >= PAGE_SIZE as u64);
/// assert_eq!(region.start() % region.size(), 0);
/// assert_eq!(region.nr_pages() as u64 * PAGE_SIZE as u64, region.size());
///
/// // A size of 0 is invalid.
/// assert_eq!(DevicePrivateRegion::new(0, c"rust_doctest").err(), Some(EINVAL));
/// # Ok::<(), Error>(())
/// ```
pub struct DevicePrivateRegion {
    res: NonNull<bindings::resource>,
}

// SAFETY: The region is owned by this object and `release_device_private_region()` may be called
// from any thread.
unsafe impl Send for DevicePrivateRegion {}

// SAFETY: Shared references only read the `struct resource`, which is not modified until the
// region is released.
unsafe impl Sync for DevicePrivateRegion {}

impl DevicePrivateRegion {
    /// Reserves a range of `size` bytes of device-private pfns, named `name`.
    ///
    /// `size` is rounded up to the memory section size. Returns [`EINVAL`] if `size` is 0 or
    /// larger than the available pfn space, [`ENOSPC`] if no free range is large enough and
    /// [`ENOMEM`] if out of memory.
    pub fn new(size: usize, name: &'static CStr) -> Result<Self> {
        // SAFETY: `name` is a valid NUL-terminated string that lives forever, so it stays valid
        // until the region is released as the C function requires.
        let res = from_err_ptr(unsafe {
            bindings::request_device_private_region(size, name.as_char_ptr())
        })?;
        // The C function never returns NULL; do not trust that blindly.
        let res = NonNull::new(res).ok_or(ENOMEM)?;
        // INVARIANT: `res` was just returned by `request_device_private_region()`.
        Ok(Self { res })
    }

    /// Returns the number of pages in the region.
    #[inline]
    pub fn nr_pages(&self) -> usize {
        // The region lies within the pfn space, so its page count fits a `usize`.
        (self.size() >> PAGE_SHIFT) as usize
    }

    /// Returns the first pfn of the region.
    #[inline]
    pub(crate) fn first_pfn(&self) -> usize {
        (self.start() >> PAGE_SHIFT) as usize
    }
}

impl Deref for DevicePrivateRegion {
    type Target = Resource;

    #[inline]
    fn deref(&self) -> &Resource {
        // SAFETY: By the type invariants `res` is valid until `self` is dropped.
        unsafe { Resource::from_raw(self.res.as_ptr()) }
    }
}

impl Drop for DevicePrivateRegion {
    fn drop(&mut self) {
        // SAFETY: By the type invariants `res` came from `request_device_private_region()` and
        // is released only here.
        unsafe { bindings::release_device_private_region(self.res.as_ptr()) };
    }
}

/// A device-private page (`struct page` of a `MEMORY_DEVICE_PRIVATE` pagemap).
///
/// Device-private pages have no CPU-addressable memory behind them: their content lives in the
/// device and only the driver can access it. Drivers identify a page by its
/// [`offset`](Self::offset) within its [`DevPagemap`], not by its pfn.
///
/// # Invariants
///
/// The page belongs to a pagemap created by [`DevPagemap`], which stays valid while the page is
/// referenced.
#[repr(transparent)]
pub struct DevicePage(Opaque<bindings::page>);

impl DevicePage {
    /// Accesses a device-private page given a raw pointer.
    ///
    /// # Safety
    ///
    /// `page` must be a page of a pagemap created by [`DevPagemap`], and the caller must hold a
    /// reference to it (or be in a callback of the pagemap about it) for the duration of `'a`.
    #[inline]
    pub(crate) unsafe fn from_raw<'a>(page: *mut bindings::page) -> &'a Self {
        // SAFETY: `DevicePage` is a transparent wrapper around `struct page`, and the caller
        // guarantees that the pointer is valid for `'a`.
        unsafe { &*page.cast() }
    }

    /// Returns a raw pointer to the `struct page`.
    #[inline]
    pub fn as_ptr(&self) -> *mut bindings::page {
        self.0.get()
    }

    /// Returns the `struct dev_pagemap` of the page.
    #[inline]
    fn pgmap(&self) -> *mut bindings::dev_pagemap {
        // SAFETY: By the type invariants the page is a valid `ZONE_DEVICE` page.
        unsafe { bindings::page_pgmap(self.as_ptr()) }
    }

    /// Returns the index of this page within its [`DevPagemap`].
    #[inline]
    pub fn offset(&self) -> usize {
        // SAFETY: By the type invariants the page is valid.
        let pfn = unsafe { bindings::page_to_pfn(self.as_ptr()) };
        // SAFETY: By the type invariants the pagemap is valid, and a `DevPagemap` always has a
        // single range, which is never modified while it is mapped.
        let start = unsafe { (*self.pgmap()).__bindgen_anon_1.range.as_ref().start };
        pfn - (start >> PAGE_SHIFT) as usize
    }
}

/// A newly allocated device-private page: locked, with one reference owned by this object.
///
/// Hand it to a migration as destination (see [`MigrateVma::set_dst_device`]) or drop it, which
/// unlocks it and drops the reference, so that [`DevPagemapOps::folio_free`] runs.
///
/// # Invariants
///
/// `page` is a page of the [`DevPagemap`] borrowed for `'a`; it is locked and this object owns
/// one reference to it.
///
/// [`MigrateVma::set_dst_device`]: crate::mm::migrate::MigrateVma::set_dst_device
pub struct LockedDevicePage<'a> {
    page: NonNull<bindings::page>,
    _p: PhantomData<&'a DevicePage>,
}

impl LockedDevicePage<'_> {
    /// Gives up the lock and the reference, and returns the raw page pointer.
    #[inline]
    pub(crate) fn into_raw(self) -> *mut bindings::page {
        ManuallyDrop::new(self).page.as_ptr()
    }
}

impl Deref for LockedDevicePage<'_> {
    type Target = DevicePage;

    #[inline]
    fn deref(&self) -> &DevicePage {
        // SAFETY: By the type invariants the page is a page of a `DevPagemap` and we hold a
        // reference to it.
        unsafe { DevicePage::from_raw(self.page.as_ptr()) }
    }
}

impl Drop for LockedDevicePage<'_> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants the page is locked by us.
        unsafe { bindings::unlock_page(self.page.as_ptr()) };
        // SAFETY: By the type invariants we own a reference, which we give up here.
        unsafe { bindings::put_page(self.page.as_ptr()) };
    }
}

/// Operations of a [`DevPagemap`] (`struct dev_pagemap_ops`).
///
/// Both methods are required: the kernel refuses device-private pagemaps without them.
#[vtable]
pub trait DevPagemapOps: Sized {
    /// The driver data of the pagemap, passed to the callbacks.
    type Ptr: ForeignOwnable + Send + Sync;

    /// Called when the last reference to a device page is dropped.
    ///
    /// The driver releases the device memory behind `page`. The page then returns to the free
    /// pages of the pagemap, from which [`DevPagemap::alloc_page`] takes it again.
    ///
    /// This may be called in atomic context and must not sleep.
    fn folio_free(data: <Self::Ptr as ForeignOwnable>::Borrowed<'_>, page: &DevicePage);

    /// Called when the CPU accesses a device page mapped into a process.
    ///
    /// The driver must migrate the page back to system memory, normally with
    /// [`MigrateVma::for_fault`]. An error makes the fault fail: [`ENOMEM`] with
    /// `VM_FAULT_OOM`, anything else with `VM_FAULT_SIGBUS`.
    ///
    /// [`MigrateVma::for_fault`]: crate::mm::migrate::MigrateVma::for_fault
    fn migrate_to_ram(
        data: <Self::Ptr as ForeignOwnable>::Borrowed<'_>,
        pagemap: &DevPagemap<Self>,
        fault: &VmFault,
    ) -> Result;
}

/// Driver data stored as a foreign pointer, returned to its owner on drop.
struct ForeignData<P: ForeignOwnable> {
    ptr: *mut c_void,
    _p: PhantomData<P>,
}

impl<P: ForeignOwnable> ForeignData<P> {
    fn new(data: P) -> Self {
        Self {
            ptr: data.into_foreign(),
            _p: PhantomData,
        }
    }

    fn borrow(&self) -> P::Borrowed<'_> {
        // SAFETY: `ptr` came from `into_foreign()` and `from_foreign()` is only called on drop,
        // which cannot happen while `self` is borrowed.
        unsafe { P::borrow(self.ptr) }
    }
}

impl<P: ForeignOwnable> Drop for ForeignData<P> {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `into_foreign()`, and no borrows of it remain.
        drop(unsafe { P::from_foreign(self.ptr) });
    }
}

/// A `MEMORY_DEVICE_PRIVATE` pagemap: the `struct page`s of a [`DevicePrivateRegion`].
///
/// Created with [`memremap_pages()`], it owns its region and its driver data (of type
/// `T::Ptr`). It keeps track of its free pages: [`DevPagemap::alloc_page`] takes one, and the
/// page becomes free again after its last reference is dropped and
/// [`DevPagemapOps::folio_free`] was called.
///
/// The address of the pagemap is its owner (`dev_pagemap.owner`), which identifies its pages
/// when migrating them with [`MigrateVma`].
///
/// Dropping the pagemap calls [`memunmap_pages()`], which **sleeps until every page of the
/// pagemap has been freed**: migrate all pages back to system memory first, for example with
/// [`DevPagemap::evict`]. Then the region is released and the driver data dropped.
///
/// [`memremap_pages()`]: srctree/mm/memremap.c
/// [`memunmap_pages()`]: srctree/mm/memremap.c
/// [`MigrateVma`]: crate::mm::migrate::MigrateVma
///
/// # Invariants
///
/// - `pgmap` is a `struct dev_pagemap` of type `MEMORY_DEVICE_PRIVATE` with the single range of
///   `region`, the operations of `DevPagemapVTable<T>` and itself as owner, mapped with
///   `memremap_pages()` and unmapped only in drop.
/// - `free` holds the offsets of the pages that are not in use (refcount 0), each once; its
///   capacity is the number of pages in the pagemap.
#[pin_data(PinnedDrop)]
pub struct DevPagemap<T: DevPagemapOps> {
    #[pin]
    pgmap: Opaque<bindings::dev_pagemap>,
    region: DevicePrivateRegion,
    #[pin]
    free: SpinLock<KVVec<usize>>,
    data: ForeignData<T::Ptr>,
}

// SAFETY: The `struct dev_pagemap` is only modified by the C side, with its own synchronisation;
// the free list is protected by a spinlock; the driver data is `Send` and only borrowed.
unsafe impl<T: DevPagemapOps> Send for DevPagemap<T> {}

// SAFETY: All methods taking `&self` are safe to call concurrently, see `Send`; the driver data is
// `Sync`.
unsafe impl<T: DevPagemapOps> Sync for DevPagemap<T> {}

/// Returns the lock-protected free list of a pagemap of `nr_pages` pages, all free.
///
/// Not part of the generic [`DevPagemap::new`]: `new_spinlock!` creates a lock class key and
/// name, which must exist once, here, and not once in every crate that instantiates
/// `DevPagemap<T>`. Lockdep reports one key with two names otherwise.
fn new_free_list(nr_pages: usize) -> Result<impl PinInit<SpinLock<KVVec<usize>>>> {
    let mut free = KVVec::with_capacity(nr_pages, GFP_KERNEL)?;
    // Pop the lowest offsets first.
    for offset in (0..nr_pages).rev() {
        free.push_within_capacity(offset).map_err(|_| ENOMEM)?;
    }
    Ok(new_spinlock!(free, "DevPagemap::free"))
}

impl<T: DevPagemapOps> DevPagemap<T> {
    /// Creates the pages of `region` with `memremap_pages()`, with driver data `data`.
    ///
    /// All pages start free.
    pub fn new(region: DevicePrivateRegion, data: T::Ptr) -> impl PinInit<Self, Error> {
        let nr_pages = region.nr_pages();
        let start = region.start();
        // The region is never empty.
        let end = start + (region.size() - 1);
        try_pin_init!(Self {
            region,
            free <- new_free_list(nr_pages)?,
            data: ForeignData::new(data),
            // INVARIANT: The pagemap is initialised with the type, range, ops and owner the
            // invariants require, and mapped.
            pgmap <- Opaque::try_ffi_init(move |slot: *mut bindings::dev_pagemap| {
                // SAFETY: `slot` is valid for writes, and all-zeroes is a valid (empty)
                // `struct dev_pagemap`.
                unsafe { slot.write_bytes(0, 1) };
                // SAFETY: `slot` is valid for writes and initialised.
                unsafe {
                    (*slot).type_ = bindings::memory_type_MEMORY_DEVICE_PRIVATE;
                    *(*slot).__bindgen_anon_1.range.as_mut() = bindings::range { start, end };
                    (*slot).nr_range = 1;
                    (*slot).ops = DevPagemapVTable::<T>::build();
                    (*slot).owner = slot.cast();
                }
                // SAFETY: `slot` is an initialised device-private pagemap that stays at this
                // address until dropped (it is pinned), where it is unmapped.
                from_err_ptr(unsafe { bindings::memremap_pages(slot, bindings::NUMA_NO_NODE) })?;
                Ok::<(), Error>(())
            }),
        }? Error)
    }

    /// Returns the region of the pagemap.
    #[inline]
    pub fn region(&self) -> &DevicePrivateRegion {
        &self.region
    }

    /// Returns the number of pages of the pagemap.
    #[inline]
    pub fn nr_pages(&self) -> usize {
        self.region.nr_pages()
    }

    /// Returns the number of free pages of the pagemap.
    pub fn nr_free(&self) -> usize {
        self.free.lock().len()
    }

    /// Returns the driver data.
    #[inline]
    pub fn data(&self) -> <T::Ptr as ForeignOwnable>::Borrowed<'_> {
        self.data.borrow()
    }

    /// Returns whether `page` is a page of this pagemap.
    #[inline]
    pub fn owns(&self, page: &DevicePage) -> bool {
        core::ptr::eq(page.pgmap(), self.pgmap.get())
    }

    /// Returns the owner of the pagemap, `dev_pagemap.owner`.
    #[inline]
    pub(crate) fn owner(&self) -> *mut c_void {
        self.pgmap.get().cast()
    }

    /// Returns the first pfn of the pagemap.
    #[inline]
    pub(crate) fn first_pfn(&self) -> usize {
        self.region.first_pfn()
    }

    /// Allocates a free page of the pagemap.
    ///
    /// The page is returned locked and with a reference, ready to be the destination of a
    /// migration. Returns [`ENOMEM`] if all pages are in use.
    pub fn alloc_page(&self) -> Result<LockedDevicePage<'_>> {
        let offset = self.free.lock().pop().ok_or(ENOMEM)?;
        // SAFETY: `offset` is below the number of pages of the pagemap, so the pfn has a
        // `struct page` as long as the pagemap is mapped.
        let page = unsafe { bindings::pfn_to_page(self.first_pfn() + offset) };
        // SAFETY: The page is a page of our pagemap and, by the type invariants, it was free
        // (refcount 0); we removed it from the free list, so nobody else uses it.
        unsafe { bindings::zone_device_page_init(page, self.pgmap.get(), 0) };
        // INVARIANT: `zone_device_page_init()` returns the page locked with one reference.
        Ok(LockedDevicePage {
            page: NonNull::new(page).ok_or(EINVAL)?,
            _p: PhantomData,
        })
    }

    /// Returns the `DevPagemap` of a device-private page of a `DevPagemap<T>`.
    ///
    /// # Safety
    ///
    /// `page` must be a page of a `DevPagemap<T>`, which must stay alive for `'a`.
    unsafe fn from_page<'a>(page: *mut bindings::page) -> &'a Self {
        // SAFETY: By the safety requirements `page` is a valid `ZONE_DEVICE` page.
        let pgmap = unsafe { bindings::page_pgmap(page) };
        // SAFETY: By the safety requirements `pgmap` is the `pgmap` field of a `DevPagemap<T>`.
        let this = unsafe { crate::container_of!(pgmap.cast::<Opaque<_>>(), Self, pgmap) };
        // SAFETY: By the safety requirements the `DevPagemap<T>` is valid for `'a`.
        unsafe { &*this }
    }
}

#[pinned_drop]
impl<T: DevPagemapOps> PinnedDrop for DevPagemap<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: By the type invariants `pgmap` is mapped, and it is unmapped only here. This
        // waits until all pages are freed; the callbacks run meanwhile still find valid data.
        unsafe { bindings::memunmap_pages(self.pgmap.get()) };
    }
}

/// The `struct dev_pagemap_ops` of a [`DevPagemap<T>`].
struct DevPagemapVTable<T: DevPagemapOps>(PhantomData<T>);

impl<T: DevPagemapOps> DevPagemapVTable<T> {
    /// # Safety
    ///
    /// `folio` must be an order-0 folio of a `DevPagemap<T>` whose last reference was dropped.
    unsafe extern "C" fn folio_free(folio: *mut bindings::folio) {
        // A folio starts with its first page.
        let page = folio.cast::<bindings::page>();
        // SAFETY: By the safety requirements `page` is a page of a `DevPagemap<T>`, which stays
        // alive until all its pages are freed.
        let this = unsafe { DevPagemap::<T>::from_page(page) };
        // SAFETY: The page belongs to a `DevPagemap<T>` and we are in its `folio_free` callback.
        let dpage = unsafe { DevicePage::from_raw(page) };
        let offset = dpage.offset();
        T::folio_free(this.data(), dpage);
        // INVARIANT: The page is free now; it was in use, so it is not on the list, and the list
        // has room for every page.
        if this.free.lock().push_within_capacity(offset).is_err() {
            pr_warn!("device private page {offset} freed twice\n");
        }
    }

    /// # Safety
    ///
    /// `vmf` must describe a fault on a device-private entry of a page of a `DevPagemap<T>`, with
    /// the mmap or vma read lock held, and a reference to the page held.
    unsafe extern "C" fn migrate_to_ram(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
        // SAFETY: By the safety requirements `vmf` is a fault being handled under the lock.
        let fault = unsafe { VmFault::from_raw(vmf) };
        // SAFETY: By the safety requirements the page belongs to a `DevPagemap<T>`, which stays
        // alive while the page is referenced.
        let this = unsafe { DevPagemap::<T>::from_page(fault.page()) };
        to_vm_fault_t(T::migrate_to_ram(this.data(), this, fault))
    }

    const VTABLE: bindings::dev_pagemap_ops = bindings::dev_pagemap_ops {
        folio_free: Some(Self::folio_free),
        migrate_to_ram: Some(Self::migrate_to_ram),
        memory_failure: None,
        folio_split: None,
    };

    const fn build() -> &'static bindings::dev_pagemap_ops {
        &Self::VTABLE
    }
}

#[cfg(CONFIG_RUST_MEMREMAP_KUNIT_TEST)]
#[macros::kunit_tests(rust_kernel_memremap)]
mod tests {
    use super::*;
    use crate::sync::{
        atomic::{
            Atomic,
            Relaxed, //
        },
        Arc,
        ArcBorrow, //
    };

    #[test]
    fn region_placement() -> Result {
        let a = DevicePrivateRegion::new(1, c"rust_kunit")?;
        let b = DevicePrivateRegion::new(a.size() as usize + 1, c"rust_kunit")?;
        // Sizes are rounded up to whole sections, which are aligned.
        assert!(a.size() > 0);
        assert_eq!(b.size(), 2 * a.size());
        assert_eq!(a.start() % a.size(), 0);
        assert_eq!(b.start() % a.size(), 0);
        // The regions do not overlap.
        assert!(a.start() + a.size() <= b.start() || b.start() + b.size() <= a.start());
        // Releasing a region makes its range available again (first fit).
        let start = a.start();
        drop(a);
        let c = DevicePrivateRegion::new(1, c"rust_kunit")?;
        assert_eq!(c.start(), start);
        Ok(())
    }

    #[test]
    fn region_bad_sizes() {
        assert_eq!(
            DevicePrivateRegion::new(0, c"rust_kunit").err(),
            Some(EINVAL)
        );
        assert_eq!(
            DevicePrivateRegion::new(usize::MAX, c"rust_kunit").err(),
            Some(EINVAL)
        );
    }

    struct Counter {
        freed: Atomic<usize>,
    }

    struct TestOps;

    #[vtable]
    impl DevPagemapOps for TestOps {
        type Ptr = Arc<Counter>;

        fn folio_free(data: ArcBorrow<'_, Counter>, _page: &DevicePage) {
            data.freed.fetch_add(1, Relaxed);
        }

        fn migrate_to_ram(
            _data: ArcBorrow<'_, Counter>,
            _pagemap: &DevPagemap<Self>,
            _fault: &VmFault,
        ) -> Result {
            Err(EFAULT)
        }
    }

    #[test]
    fn pagemap_alloc_free() -> Result {
        let counter = Arc::new(
            Counter {
                freed: Atomic::new(0),
            },
            GFP_KERNEL,
        )?;
        let region = DevicePrivateRegion::new(1, c"rust_kunit")?;
        let nr_pages = region.nr_pages();
        let pagemap = KBox::pin_init(
            DevPagemap::<TestOps>::new(region, counter.clone()),
            GFP_KERNEL,
        )?;
        assert_eq!(pagemap.nr_pages(), nr_pages);
        assert_eq!(pagemap.nr_free(), nr_pages);

        let a = pagemap.alloc_page()?;
        let b = pagemap.alloc_page()?;
        assert_eq!(a.offset(), 0);
        assert_eq!(b.offset(), 1);
        assert!(pagemap.owns(&a));
        assert_eq!(pagemap.nr_free(), nr_pages - 2);

        // Dropping the last reference frees the page and calls `folio_free`.
        drop(a);
        assert_eq!(counter.freed.load(Relaxed), 1);
        assert_eq!(pagemap.nr_free(), nr_pages - 1);

        // The freed page is allocated again first.
        let c = pagemap.alloc_page()?;
        assert_eq!(c.offset(), 0);
        drop(b);
        drop(c);
        assert_eq!(counter.freed.load(Relaxed), 3);
        assert_eq!(pagemap.nr_free(), nr_pages);

        // Dropping the pagemap unmaps it and releases the region and the data.
        drop(pagemap);
        assert!(counter.freed.load(Relaxed) == 3);
        Ok(())
    }
}
