// SPDX-License-Identifier: GPL-2.0

//! Device-private memory (`MEMORY_DEVICE_PRIVATE`, used by HMM).
//!
//! A device with memory that the CPU cannot address directly (for example GPU memory) can let
//! the kernel migrate the pages of a process to that memory. The kernel then represents the
//! device memory with `struct page`s whose pfns do not belong to any CPU physical address: with
//! `CONFIG_DEVICE_PRIVATE_PFN_WINDOW` they are taken from a window above the largest physical
//! address (debugfs `device_private` lists it).
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
    mm::{
        fault::{
            to_vm_fault_t,
            VmFault, //
        },
        migrate::DstPage,
        virt::VmaRef,
    },
    page::PAGE_SHIFT,
    prelude::*,
    sync::atomic::{
        Acquire,
        Atomic,
        Relaxed,
        Release, //
    },
    types::Opaque,
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
/// unlocks it and drops the reference, so that [`DevPagemapOps::folio_free`] runs. It borrows
/// its [`DevPagemap`], which therefore cannot be dropped while the page is in the driver's hands.
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

/// A CPU access to a device-private page of a [`DevPagemap<T>`] mapped into a process: the
/// argument of [`DevPagemapOps::migrate_to_ram`].
///
/// # Invariants
///
/// - `fault` is a fault on a device-private entry of `fault.vma()`, and the mmap read lock of the
///   VMA's mm is held: the kernel calls `migrate_to_ram` only then (`do_swap_page()` and
///   `do_huge_pmd_device_private()` return `VM_FAULT_RETRY` for a fault under the per-VMA lock,
///   and the fault is retried under the mmap lock).
/// - `vmf->page` is a page of `pagemap`, locked and referenced by the fault handler for `'a`.
pub struct DevicePrivateFault<'a, T: DevPagemapOps> {
    fault: &'a VmFault,
    pagemap: &'a DevPagemap<T>,
}

impl<'a, T: DevPagemapOps> DevicePrivateFault<'a, T> {
    /// Returns the faulting virtual address, aligned down to the page.
    #[inline]
    pub fn address(&self) -> usize {
        self.fault.address()
    }

    /// Returns the VMA of the fault.
    #[inline]
    pub fn vma(&self) -> &VmaRef {
        self.fault.vma()
    }

    /// Returns the pagemap of the faulting page.
    #[inline]
    pub fn pagemap(&self) -> &'a DevPagemap<T> {
        self.pagemap
    }

    /// Returns the faulting device-private page.
    #[inline]
    pub fn page(&self) -> &DevicePage {
        // SAFETY: By the type invariants the page is a page of `pagemap`, referenced for `'a`.
        unsafe { DevicePage::from_raw(self.fault.page_ptr()) }
    }

    /// Returns the fault.
    #[inline]
    pub(crate) fn vm_fault(&self) -> &'a VmFault {
        self.fault
    }
}

/// Operations of a [`DevPagemap`] (`struct dev_pagemap_ops`), implemented by its driver data.
///
/// The methods are required: the kernel refuses device-private pagemaps without `folio_free`
/// and `migrate_to_ram`, and the pagemap cannot be torn down without `copy_to_ram`.
#[vtable]
pub trait DevPagemapOps: Sized + Send + Sync {
    /// Called when the last reference to a device page is dropped.
    ///
    /// The driver releases the device memory behind `page`. The page can be allocated again
    /// (see [`DevPagemap::alloc_page`]) once this returns.
    ///
    /// This may be called in atomic context and must not sleep.
    fn folio_free(pagemap: &DevPagemap<Self>, page: &DevicePage);

    /// Called when the CPU accesses a device page mapped into a process.
    ///
    /// The driver must migrate the page back to system memory, normally with
    /// [`MigrateVma::for_fault`]. An error makes the fault fail: [`ENOMEM`] with
    /// `VM_FAULT_OOM`, anything else with `VM_FAULT_SIGBUS`.
    ///
    /// [`MigrateVma::for_fault`]: crate::mm::migrate::MigrateVma::for_fault
    fn migrate_to_ram(fault: &DevicePrivateFault<'_, Self>) -> Result;

    /// Copies the content of device page `page` to the system memory page `dst`.
    ///
    /// Called when the pagemap is dropped, for every page still in use (mapped by a process),
    /// to migrate it back to system memory. If this fails, the page is migrated anyway with
    /// what `dst` holds (zeroes unless it was filled) and a warning is printed: teardown cannot
    /// wait for a device that fails.
    fn copy_to_ram(pagemap: &DevPagemap<Self>, page: &DevicePage, dst: &mut DstPage<'_>) -> Result;
}

/// Bits per word of [`InUse`].
const WORD_BITS: usize = usize::BITS as usize;

/// The pages of a [`DevPagemap`] that are in use, one bit per page, and their number.
///
/// A bit is set, with an atomic compare-and-exchange, by the one caller that takes the free page
/// for initialisation, and cleared after `folio_free` returned for the page.
struct InUse {
    words: KVVec<Atomic<usize>>,
    count: Atomic<usize>,
}

impl InUse {
    fn new(nr_pages: usize) -> Result<Self> {
        let nr_words = nr_pages.div_ceil(WORD_BITS);
        let mut words = KVVec::with_capacity(nr_words, GFP_KERNEL)?;
        for _ in 0..nr_words {
            words
                .push_within_capacity(Atomic::new(0))
                .map_err(|_| ENOMEM)?;
        }
        Ok(Self {
            words,
            count: Atomic::new(0),
        })
    }

    fn word_and_bit(&self, offset: usize) -> Option<(&Atomic<usize>, usize)> {
        let word = self.words.get(offset / WORD_BITS)?;
        Some((word, 1 << (offset % WORD_BITS)))
    }

    /// Marks page `offset` in use; returns `false` if it already was or is out of range.
    fn claim(&self, offset: usize) -> bool {
        let Some((word, bit)) = self.word_and_bit(offset) else {
            return false;
        };
        let mut old = word.load(Relaxed);
        loop {
            if old & bit != 0 {
                return false;
            }
            // Acquire: pairs with the release in `release()`, so that the page is initialised
            // after everything its previous user and `folio_free` did.
            match word.cmpxchg(old, old | bit, Acquire) {
                Ok(_) => break,
                Err(cur) => old = cur,
            }
        }
        self.count.add(1, Relaxed);
        true
    }

    /// Marks page `offset` free; returns `false` if it was not in use.
    fn release(&self, offset: usize) -> bool {
        let Some((word, bit)) = self.word_and_bit(offset) else {
            return false;
        };
        let mut old = word.load(Relaxed);
        loop {
            if old & bit == 0 {
                return false;
            }
            match word.cmpxchg(old, old & !bit, Release) {
                Ok(_) => break,
                Err(cur) => old = cur,
            }
        }
        self.count.fetch_sub(1, Relaxed);
        true
    }

    /// Returns whether page `offset` is in use.
    fn test(&self, offset: usize) -> bool {
        self.word_and_bit(offset)
            .is_some_and(|(word, bit)| word.load(Relaxed) & bit != 0)
    }

    /// Returns the first page below `nr_pages` that is free, if any.
    fn first_free(&self, nr_pages: usize) -> Option<usize> {
        self.words
            .iter()
            .enumerate()
            .find_map(|(i, word)| {
                let free = !word.load(Relaxed);
                (free != 0).then(|| i * WORD_BITS + free.trailing_zeros() as usize)
            })
            .filter(|&offset| offset < nr_pages)
    }

    fn count(&self) -> usize {
        self.count.load(Relaxed)
    }
}

/// A `MEMORY_DEVICE_PRIVATE` pagemap: the `struct page`s of a [`DevicePrivateRegion`].
///
/// Created with [`memremap_pages()`], it owns its region and its driver data of type `T`, which
/// implements the callbacks. It knows which of its pages are in use: [`DevPagemap::alloc_page`]
/// or [`DevPagemap::alloc_page_at`] take a free one, and a page is free again after its last
/// reference was dropped and [`DevPagemapOps::folio_free`] returned. Which free page to use is
/// the driver's choice.
///
/// The address of the pagemap is its owner (`dev_pagemap.owner`), which identifies its pages
/// when migrating them with [`MigrateVma`].
///
/// Dropping the pagemap migrates every page that is still in use back to system memory (with
/// [`DevPagemapOps::copy_to_ram`]), retrying until none is left, then calls
/// [`memunmap_pages()`], releases the region and drops the driver data. It does not fail and
/// does not allocate anything that can fail, so a driver can be unbound or unloaded while
/// processes still have pages on its device. A driver usually embeds the pagemap in the data of
/// its bound device, so that it is dropped on unbind, which is what the `devm_` variants of
/// the C functions achieve.
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
/// - A page whose bit in `in_use` is clear has a reference count of zero and nobody else is
///   about to initialise it.
///
/// # Examples
///
/// ```
/// use kernel::mm::memremap::{
///     DevPagemap, DevPagemapOps, DevicePage, DevicePrivateFault, DevicePrivateRegion,
/// };
/// use kernel::mm::migrate::DstPage;
/// use kernel::page::PAGE_SIZE;
/// use kernel::sync::atomic::{Atomic, Relaxed};
///
/// struct Device {
///     freed: Atomic<usize>,
/// }
///
/// #[vtable]
/// impl DevPagemapOps for Device {
///     fn folio_free(pagemap: &DevPagemap<Self>, _page: &DevicePage) {
///         pagemap.data().freed.fetch_add(1, Relaxed);
///     }
///
///     fn migrate_to_ram(_fault: &DevicePrivateFault<'_, Self>) -> Result {
///         // This device never hands out its pages, so the CPU cannot fault on them.
///         Err(EFAULT)
///     }
///
///     fn copy_to_ram(
///         _pagemap: &DevPagemap<Self>,
///         _page: &DevicePage,
///         _dst: &mut DstPage<'_>,
///     ) -> Result {
///         // A device without memory: the pages come back as zeroes.
///         Ok(())
///     }
/// }
///
/// let region = DevicePrivateRegion::new(PAGE_SIZE, c"rust_doctest")?;
/// let pagemap = KBox::pin_init(
///     DevPagemap::new(region, Device { freed: Atomic::new(0) }),
///     GFP_KERNEL,
/// )?;
/// let page = pagemap.alloc_page()?;
/// assert!(pagemap.owns(&page));
/// assert_eq!(pagemap.nr_in_use(), 1);
/// // The driver chooses the page: this one is taken already.
/// assert_eq!(pagemap.alloc_page_at(page.offset()).err(), Some(EBUSY));
/// drop(page);
/// assert_eq!(pagemap.nr_in_use(), 0);
/// assert_eq!(pagemap.data().freed.load(Relaxed), 1);
/// # Ok::<(), Error>(())
/// ```
#[pin_data(PinnedDrop)]
pub struct DevPagemap<T: DevPagemapOps> {
    #[pin]
    pgmap: Opaque<bindings::dev_pagemap>,
    region: DevicePrivateRegion,
    in_use: InUse,
    #[pin]
    data: T,
}

// SAFETY: The `struct dev_pagemap` is only modified by the C side, with its own synchronisation;
// `in_use` is only changed with atomic operations; the driver data is `Send`.
unsafe impl<T: DevPagemapOps> Send for DevPagemap<T> {}

// SAFETY: All methods taking `&self` are safe to call concurrently, see `Send`; the driver data is
// `Sync`.
unsafe impl<T: DevPagemapOps> Sync for DevPagemap<T> {}

impl<T: DevPagemapOps> DevPagemap<T> {
    /// Creates the pages of `region` with `memremap_pages()`, with driver data `data`.
    ///
    /// All pages start free.
    pub fn new<E>(
        region: DevicePrivateRegion,
        data: impl PinInit<T, E>,
    ) -> impl PinInit<Self, Error>
    where
        Error: From<E>,
    {
        let nr_pages = region.nr_pages();
        let start = region.start();
        // The region is never empty.
        let end = start + (region.size() - 1);
        try_pin_init!(Self {
            data <- data,
            region,
            in_use: InUse::new(nr_pages)?,
            // INVARIANT: The pagemap is initialised with the type, range, ops and owner the
            // invariants require, and mapped. The callbacks can run from now on and find the
            // other fields initialised. All pages are free.
            pgmap <- Opaque::try_ffi_init(move |slot: *mut bindings::dev_pagemap| {
                // SAFETY: `slot` is valid for writes, and all-zeroes is a valid (empty)
                // `struct dev_pagemap`.
                unsafe { slot.write_bytes(0, 1) };
                // SAFETY: `slot` is valid for writes and initialised.
                unsafe {
                    (*slot).type_ = bindings::memory_type_MEMORY_DEVICE_PRIVATE;
                    *(*slot).__bindgen_anon_1.range.as_mut() = bindings::range { start, end };
                    (*slot).nr_range = 1;
                    (*slot).ops = &DevPagemapVTable::<T>::VTABLE;
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

    /// Returns the number of pages of the pagemap that are in use.
    #[inline]
    pub fn nr_in_use(&self) -> usize {
        self.in_use.count()
    }

    /// Returns the driver data.
    #[inline]
    pub fn data(&self) -> &T {
        &self.data
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

    /// Returns whether page `offset` is in use.
    #[inline]
    pub(crate) fn is_in_use(&self, offset: usize) -> bool {
        self.in_use.test(offset)
    }

    /// Allocates page `offset` of the pagemap.
    ///
    /// The page is returned locked and with a reference, ready to be the destination of a
    /// migration. Returns [`EINVAL`] if `offset` is not below [`DevPagemap::nr_pages`] and
    /// [`EBUSY`] if the page is in use.
    pub fn alloc_page_at(&self, offset: usize) -> Result<LockedDevicePage<'_>> {
        if offset >= self.nr_pages() {
            return Err(EINVAL);
        }
        if !self.in_use.claim(offset) {
            return Err(EBUSY);
        }
        // SAFETY: `offset` is below the number of pages of the pagemap, so the pfn has a
        // `struct page` as long as the pagemap is mapped.
        let page = unsafe { bindings::pfn_to_page(self.first_pfn() + offset) };
        // SAFETY: The page is a page of our pagemap; it was free (refcount 0) by the type
        // invariants, and we claimed it, so nobody else initialises it.
        unsafe { bindings::zone_device_page_init(page, self.pgmap.get(), 0) };
        // INVARIANT: `zone_device_page_init()` returns the page locked with one reference; the
        // `struct page`s of a mapped pagemap are never at address 0.
        Ok(LockedDevicePage {
            // SAFETY: `pfn_to_page()` of a valid pfn is not null.
            page: unsafe { NonNull::new_unchecked(page) },
            _p: PhantomData,
        })
    }

    /// Allocates the free page of the pagemap with the lowest offset.
    ///
    /// Like [`DevPagemap::alloc_page_at`]; returns [`ENOMEM`] if all pages are in use.
    pub fn alloc_page(&self) -> Result<LockedDevicePage<'_>> {
        loop {
            let offset = self.in_use.first_free(self.nr_pages()).ok_or(ENOMEM)?;
            match self.alloc_page_at(offset) {
                // Another thread took it meanwhile: look again.
                Err(e) if e == EBUSY => continue,
                result => return result,
            }
        }
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
        // No page is borrowed by the driver any more (a `LockedDevicePage` or a `MigrateVma`
        // borrows the pagemap); pages mapped by processes are migrated back here.
        self.evict_all();
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
        T::folio_free(this, dpage);
        // INVARIANT: The page is free now; the C side does not touch it after this callback.
        if !this.in_use.release(offset) {
            pr_warn!("device private page {offset} freed but not in use\n");
        }
    }

    /// # Safety
    ///
    /// `vmf` must describe a fault on a device-private entry of a page of a `DevPagemap<T>`, with
    /// the mmap read lock held, and the page locked and referenced, as `do_swap_page()` and
    /// `do_huge_pmd_device_private()` call `migrate_to_ram`.
    unsafe extern "C" fn migrate_to_ram(vmf: *mut bindings::vm_fault) -> bindings::vm_fault_t {
        // SAFETY: By the safety requirements `vmf` is a fault being handled under the mmap lock.
        let fault = unsafe { VmFault::from_raw(vmf) };
        // SAFETY: By the safety requirements the page belongs to a `DevPagemap<T>`, which stays
        // alive while the page is referenced.
        let pagemap = unsafe { DevPagemap::<T>::from_page(fault.page_ptr()) };
        // INVARIANT: By the safety requirements the mmap read lock is held and the page is a
        // locked and referenced page of `pagemap`.
        let fault = DevicePrivateFault { fault, pagemap };
        to_vm_fault_t(T::migrate_to_ram(&fault))
    }

    const VTABLE: bindings::dev_pagemap_ops = bindings::dev_pagemap_ops {
        folio_free: Some(Self::folio_free),
        migrate_to_ram: Some(Self::migrate_to_ram),
        ..pin_init::zeroed()
    };
}

#[cfg(CONFIG_RUST_MEMREMAP_KUNIT_TEST)]
#[macros::kunit_tests(rust_kernel_memremap)]
mod tests {
    use super::*;
    use crate::{
        mm::migrate::DstPage,
        sync::{
            atomic::{
                Atomic,
                Relaxed, //
            },
            Arc,
        },
    };

    #[test]
    fn region_sizes() -> Result {
        let a = DevicePrivateRegion::new(1, c"rust_kunit")?;
        let b = DevicePrivateRegion::new(a.size() as usize + 1, c"rust_kunit")?;
        // Sizes are rounded up to whole sections, which are aligned.
        assert!(a.size() > 0);
        assert_eq!(b.size(), 2 * a.size());
        assert_eq!(a.start() % a.size(), 0);
        assert_eq!(b.start() % a.size(), 0);
        // The regions do not overlap.
        assert!(a.start() + a.size() <= b.start() || b.start() + b.size() <= a.start());
        // With the device-private pfn window, they are in it (where exactly is the C suite's
        // business: other users of the window race with this test).
        // SAFETY: `mhp_get_device_private_range()` has no requirements.
        let window = unsafe { bindings::mhp_get_device_private_range() };
        if window.start <= window.end {
            for r in [&a, &b] {
                assert!(r.start() >= window.start && r.start() + (r.size() - 1) <= window.end);
            }
        }
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

    /// What the test pagemap's callbacks saw; shared with the test, which outlives the pagemap.
    struct Seen {
        /// Bit `n` set: `folio_free` was called for the page at offset `n` (`n < 64`).
        freed: Atomic<u64>,
        nr_freed: Atomic<usize>,
        dropped: Atomic<bool>,
    }

    struct TestDevice {
        seen: Arc<Seen>,
    }

    impl Drop for TestDevice {
        fn drop(&mut self) {
            self.seen.dropped.store(true, Relaxed);
        }
    }

    #[vtable]
    impl DevPagemapOps for TestDevice {
        fn folio_free(pagemap: &DevPagemap<Self>, page: &DevicePage) {
            let seen = &pagemap.data().seen;
            if page.offset() < 64 {
                let mut old = seen.freed.load(Relaxed);
                while let Err(cur) = seen.freed.cmpxchg(old, old | 1 << page.offset(), Relaxed) {
                    old = cur;
                }
            }
            seen.nr_freed.fetch_add(1, Relaxed);
        }

        fn migrate_to_ram(_fault: &DevicePrivateFault<'_, Self>) -> Result {
            Err(EFAULT)
        }

        fn copy_to_ram(
            _pagemap: &DevPagemap<Self>,
            _page: &DevicePage,
            _dst: &mut DstPage<'_>,
        ) -> Result {
            Err(EIO)
        }
    }

    fn new_seen() -> Result<Arc<Seen>> {
        Ok(Arc::new(
            Seen {
                freed: Atomic::new(0),
                nr_freed: Atomic::new(0),
                dropped: Atomic::new(false),
            },
            GFP_KERNEL,
        )?)
    }

    fn new_pagemap(seen: &Arc<Seen>) -> Result<Pin<KBox<DevPagemap<TestDevice>>>> {
        let region = DevicePrivateRegion::new(1, c"rust_kunit")?;
        KBox::pin_init(
            DevPagemap::new(region, TestDevice { seen: seen.clone() }),
            GFP_KERNEL,
        )
    }

    #[test]
    fn pagemap_alloc_free() -> Result {
        let seen = new_seen()?;
        let pagemap = new_pagemap(&seen)?;
        let nr_pages = pagemap.nr_pages();
        let start = pagemap.region().start();
        let size = pagemap.region().size();
        assert_eq!(pagemap.nr_in_use(), 0);

        let a = pagemap.alloc_page()?;
        let b = pagemap.alloc_page()?;
        let c = pagemap.alloc_page_at(7)?;
        assert_eq!((a.offset(), b.offset(), c.offset()), (0, 1, 7));
        assert!(pagemap.owns(&a) && pagemap.owns(&c));
        assert_eq!(pagemap.nr_in_use(), 3);

        // Dropping the last reference calls `folio_free` for that page, which is free then.
        drop(b);
        assert_eq!(seen.freed.load(Relaxed), 1 << 1);
        assert_eq!(seen.nr_freed.load(Relaxed), 1);
        assert_eq!(pagemap.nr_in_use(), 2);
        let b = pagemap.alloc_page()?;
        assert_eq!(b.offset(), 1);
        drop((a, b, c));
        assert_eq!(seen.freed.load(Relaxed), 1 << 0 | 1 << 1 | 1 << 7);
        assert_eq!(seen.nr_freed.load(Relaxed), 4);
        assert_eq!(pagemap.nr_in_use(), 0);

        // Dropping the pagemap unmaps it, releases the region and drops the driver data: the
        // same range can be requested again.
        assert!(!seen.dropped.load(Relaxed));
        drop(pagemap);
        assert!(seen.dropped.load(Relaxed));
        let again = DevicePrivateRegion::new(size as usize, c"rust_kunit")?;
        assert_eq!(again.start(), start);
        assert_eq!(nr_pages, again.nr_pages());
        Ok(())
    }

    #[test]
    fn pagemap_bad_input() -> Result {
        let seen = new_seen()?;
        let pagemap = new_pagemap(&seen)?;
        let other = new_pagemap(&seen)?;
        let nr_pages = pagemap.nr_pages();

        // Offsets out of range, pages in use.
        assert_eq!(pagemap.alloc_page_at(nr_pages).err(), Some(EINVAL));
        assert_eq!(pagemap.alloc_page_at(usize::MAX).err(), Some(EINVAL));
        let page = pagemap.alloc_page_at(nr_pages - 1)?;
        assert_eq!(pagemap.alloc_page_at(nr_pages - 1).err(), Some(EBUSY));

        // A page of another pagemap.
        let foreign = other.alloc_page()?;
        assert!(!pagemap.owns(&foreign));
        assert!(!other.owns(&page));
        assert_eq!(foreign.offset(), 0);
        drop(foreign);
        drop(page);

        // Exhaustion: every page in use, then all free again.
        let mut pages = KVVec::with_capacity(nr_pages, GFP_KERNEL)?;
        for _ in 0..nr_pages {
            pages
                .push_within_capacity(pagemap.alloc_page()?)
                .map_err(|_| ENOMEM)?;
        }
        assert_eq!(pagemap.nr_in_use(), nr_pages);
        assert_eq!(pagemap.alloc_page().err(), Some(ENOMEM));
        assert_eq!(pagemap.alloc_page_at(0).err(), Some(EBUSY));
        drop(pages);
        assert_eq!(pagemap.nr_in_use(), 0);
        assert_eq!(seen.nr_freed.load(Relaxed), nr_pages + 2);
        Ok(())
    }
}
