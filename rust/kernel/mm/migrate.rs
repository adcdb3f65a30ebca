// SPDX-License-Identifier: GPL-2.0

//! Migration of pages to and from device-private memory.
//!
//! C header: [`include/linux/migrate.h`](srctree/include/linux/migrate.h)

use crate::{
    alloc::{
        flags::GFP_KERNEL,
        KVVec, //
    },
    bindings,
    error::{
        to_result,
        Result, //
    },
    ffi::c_ulong,
    mm::{
        fault::VmFault,
        memremap::{
            DevPagemap,
            DevPagemapOps,
            DevicePage,
            LockedDevicePage, //
        },
        virt::VmaRef,
    },
    page::{
        BorrowedPage,
        Page,
        PAGE_MASK,
        PAGE_SHIFT,
        PAGE_SIZE, //
    },
    prelude::*,
};
use core::{
    marker::PhantomData,
    mem::ManuallyDrop,
    ptr::NonNull, //
};

const MPFN_VALID: c_ulong = bindings::MIGRATE_PFN_VALID as c_ulong;
const MPFN_MIGRATE: c_ulong = bindings::MIGRATE_PFN_MIGRATE as c_ulong;
const MPFN_WRITE: c_ulong = bindings::MIGRATE_PFN_WRITE as c_ulong;

/// Which pages of a range a [`MigrateVma`] selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateSelect {
    /// System memory pages, to migrate them to a device.
    System,
    /// Device-private pages of one [`DevPagemap`], to migrate them back to system memory.
    DevicePrivate,
}

impl MigrateSelect {
    fn flags(self) -> c_ulong {
        let flags = match self {
            Self::System => bindings::migrate_vma_direction_MIGRATE_VMA_SELECT_SYSTEM,
            Self::DevicePrivate => {
                bindings::migrate_vma_direction_MIGRATE_VMA_SELECT_DEVICE_PRIVATE
            }
        };
        flags as c_ulong
    }
}

/// The source page of one entry of a [`MigrateVma`].
pub enum MigrateSrc<'a> {
    /// The entry is not being migrated.
    Skip,
    /// The entry is being migrated but has no page yet (it was never touched): the destination
    /// starts zeroed.
    Empty,
    /// A system memory page, locked and unmapped for the migration.
    System(BorrowedPage<'a>),
    /// A device-private page of the [`DevPagemap`] given to [`MigrateVma::setup`].
    DevicePrivate(&'a DevicePage),
}

/// A migration of a range of a VMA with `migrate_vma_setup()`, `migrate_vma_pages()` and
/// `migrate_vma_finalize()`.
///
/// [`MigrateVma::setup`] collects, locks and unmaps the selected pages of the range; the driver
/// then looks at each source entry with [`MigrateVma::src`], copies the data and sets a
/// destination page with [`MigrateVma::set_dst_device`] or [`MigrateVma::set_dst_page`]. Entries
/// without a destination stay where they are. [`MigrateVma::pages`] migrates, and
/// [`MigrateVma::finalize`] (or dropping the object) restores the page tables and unlocks the
/// pages; it runs exactly once.
///
/// The object borrows the VMA, so the mmap read lock (or the vma read lock of a fault) is held
/// until it is finalized.
///
/// # Invariants
///
/// - `args` was passed to a successful `migrate_vma_setup()`; its `src` and `dst` point to the
///   buffers of `src` and `dst`, which have `args.npages` entries each.
/// - `migrate_vma_finalize()` has not been called yet; `pages_done` tells whether
///   `migrate_vma_pages()` was called.
/// - Every non-zero `dst` entry holds a locked page with a reference owned by the migration.
pub struct MigrateVma<'a> {
    args: bindings::migrate_vma,
    src: KVVec<c_ulong>,
    dst: KVVec<c_ulong>,
    pages_done: bool,
    _vma: PhantomData<&'a VmaRef>,
}

impl<'a> MigrateVma<'a> {
    /// Collects the pages selected by `select` of `[start, end)` of `vma` for migration.
    ///
    /// `start` and `end` must be page aligned and within `vma`, else [`EINVAL`] is returned.
    /// With [`MigrateSelect::DevicePrivate`] only pages of `pagemap` are selected.
    pub fn setup<T: DevPagemapOps>(
        vma: &'a VmaRef,
        start: usize,
        end: usize,
        select: MigrateSelect,
        pagemap: &DevPagemap<T>,
    ) -> Result<Self> {
        Self::new(vma, start, end, select, pagemap, core::ptr::null_mut())
    }

    /// Collects the faulting page of `fault` for migration back to system memory.
    ///
    /// This is the way [`DevPagemapOps::migrate_to_ram`] migrates the page.
    pub fn for_fault<T: DevPagemapOps>(
        fault: &'a VmFault,
        pagemap: &DevPagemap<T>,
    ) -> Result<Self> {
        let start = fault.address() & PAGE_MASK;
        let end = start.checked_add(PAGE_SIZE).ok_or(EINVAL)?;
        Self::new(
            fault.vma(),
            start,
            end,
            MigrateSelect::DevicePrivate,
            pagemap,
            fault.page(),
        )
    }

    fn new<T: DevPagemapOps>(
        vma: &'a VmaRef,
        start: usize,
        end: usize,
        select: MigrateSelect,
        pagemap: &DevPagemap<T>,
        fault_page: *mut bindings::page,
    ) -> Result<Self> {
        if start >= end
            || start & !PAGE_MASK != 0
            || end & !PAGE_MASK != 0
            || start < vma.start()
            || end > vma.end()
        {
            return Err(EINVAL);
        }
        let npages = (end - start) >> PAGE_SHIFT;
        let mut src = KVVec::from_elem(0, npages, GFP_KERNEL)?;
        let mut dst = KVVec::from_elem(0, npages, GFP_KERNEL)?;

        // SAFETY: All-zeroes is a valid `struct migrate_vma`.
        let mut args: bindings::migrate_vma = unsafe { core::mem::zeroed() };
        args.vma = vma.as_ptr();
        args.src = src.as_mut_ptr();
        args.dst = dst.as_mut_ptr();
        args.start = start;
        args.end = end;
        args.pgmap_owner = pagemap.owner();
        args.flags = select.flags();
        args.fault_page = fault_page;

        // SAFETY: `args` describes a range within `vma`, whose mmap or vma read lock is held (by
        // the invariants of `VmaRef`), and `src` and `dst` have room for every page of the range.
        to_result(unsafe { bindings::migrate_vma_setup(&mut args) })?;
        // INVARIANT: `migrate_vma_setup()` succeeded; the buffers of the vectors do not move when
        // the vectors do.
        Ok(Self {
            args,
            src,
            dst,
            pages_done: false,
            _vma: PhantomData,
        })
    }

    /// Returns the number of entries (pages) of the range.
    #[inline]
    pub fn npages(&self) -> usize {
        self.src.len()
    }

    /// Returns the number of pages collected for migration.
    #[inline]
    pub fn cpages(&self) -> usize {
        self.args.cpages
    }

    /// Returns the source of entry `i` (page `start + i * PAGE_SIZE`).
    pub fn src(&self, i: usize) -> MigrateSrc<'_> {
        let Some(&mpfn) = self.src.get(i) else {
            return MigrateSrc::Skip;
        };
        if mpfn & MPFN_MIGRATE == 0 {
            return MigrateSrc::Skip;
        }
        // SAFETY: `migrate_pfn_to_page()` only decodes the entry.
        let Some(page) = NonNull::new(unsafe { bindings::migrate_pfn_to_page(mpfn) }) else {
            return MigrateSrc::Empty;
        };
        // SAFETY: The page is locked and referenced by the migration until it is finalized,
        // which needs `self` by value.
        if unsafe { bindings::is_device_private_page(page.as_ptr()) } {
            // SAFETY: With `MigrateSelect::DevicePrivate`, only device-private pages of the
            // pagemap whose owner is in `args.pgmap_owner` are collected: a `DevPagemap`. They
            // stay referenced until the migration is finalized.
            MigrateSrc::DevicePrivate(unsafe { DevicePage::from_raw(page.as_ptr()) })
        } else {
            // SAFETY: The page is a system memory page, referenced until the migration is
            // finalized, which cannot happen while `self` is borrowed.
            MigrateSrc::System(unsafe { BorrowedPage::from_raw(page) })
        }
    }

    /// Returns whether entry `i` was mapped writable.
    #[inline]
    pub fn src_is_write(&self, i: usize) -> bool {
        self.src.get(i).is_some_and(|&mpfn| mpfn & MPFN_WRITE != 0)
    }

    /// Returns whether entry `i` was migrated; meaningful after [`MigrateVma::pages`].
    #[inline]
    pub fn is_migrated(&self, i: usize) -> bool {
        self.pages_done
            && self.dst.get(i).is_some_and(|&mpfn| mpfn != 0)
            && self
                .src
                .get(i)
                .is_some_and(|&mpfn| mpfn & MPFN_MIGRATE != 0)
    }

    fn check_dst(&self, i: usize) -> Result {
        if self.pages_done {
            return Err(EBUSY);
        }
        match (self.src.get(i), self.dst.get(i)) {
            (Some(&src), Some(&dst)) if src & MPFN_MIGRATE != 0 && dst == 0 => Ok(()),
            (Some(_), Some(_)) => Err(EBUSY),
            _ => Err(EINVAL),
        }
    }

    /// Stores locked `page` with one reference owned by the migration as destination of `i`.
    ///
    /// # Safety
    ///
    /// `page` must be a locked page with a reference that the caller gives up, and `check_dst(i)`
    /// must have succeeded.
    unsafe fn set_dst_raw(&mut self, i: usize, page: *mut bindings::page) {
        let write = self.src[i] & MPFN_WRITE;
        // SAFETY: `page` is a valid page.
        let pfn = unsafe { bindings::page_to_pfn(page) };
        // SAFETY: `migrate_pfn()` only encodes the pfn.
        // INVARIANT: The caller guarantees that `page` is locked with a reference for us.
        self.dst[i] = unsafe { bindings::migrate_pfn(pfn) } | write;
    }

    /// Sets device-private `page` as destination of entry `i`.
    ///
    /// Returns [`EINVAL`] if `i` is out of range or the entry is not being migrated, and
    /// [`EBUSY`] if it already has a destination or the migration is done; `page` is dropped
    /// (freed) then.
    pub fn set_dst_device(&mut self, i: usize, page: LockedDevicePage<'_>) -> Result {
        self.check_dst(i)?;
        let page = page.into_raw();
        // SAFETY: `page` was locked with a reference, which we take over.
        unsafe { self.set_dst_raw(i, page) };
        Ok(())
    }

    /// Sets system memory `page` as destination of entry `i`.
    ///
    /// Errors are those of [`MigrateVma::set_dst_device`].
    pub fn set_dst_page(&mut self, i: usize, page: Page) -> Result {
        self.check_dst(i)?;
        let page = ManuallyDrop::new(page).as_ptr();
        // SAFETY: `page` is a newly allocated page, so locking it does not block for long.
        unsafe { bindings::lock_page(page) };
        // SAFETY: `page` is locked, and its reference, owned by the `Page` we consumed, is taken
        // over.
        unsafe { self.set_dst_raw(i, page) };
        Ok(())
    }

    /// Migrates the entries that have a destination (`migrate_vma_pages()`).
    ///
    /// No destination can be set afterwards. Does nothing when called again.
    pub fn pages(&mut self) {
        if !self.pages_done {
            // SAFETY: By the type invariants setup succeeded and finalize was not called.
            unsafe { bindings::migrate_vma_pages(&mut self.args) };
            self.pages_done = true;
        }
    }

    /// Finishes the migration (`migrate_vma_finalize()`), calling [`MigrateVma::pages`] first if
    /// needed.
    ///
    /// Dropping the object does the same.
    pub fn finalize(self) {}
}

impl Drop for MigrateVma<'_> {
    fn drop(&mut self) {
        self.pages();
        // SAFETY: By the type invariants setup succeeded and finalize was not called; it is
        // called exactly once, here.
        unsafe { bindings::migrate_vma_finalize(&mut self.args) };
    }
}

impl<T: DevPagemapOps> DevPagemap<T> {
    /// Migrates every page of the pagemap that is in use back to system memory.
    ///
    /// For each page, `copy` gets the device page and the new system memory page to copy its
    /// content to. If `copy` fails, or no system memory page can be allocated, the page stays
    /// on the device; the other pages are migrated and the first error is returned.
    ///
    /// Use this before dropping the pagemap, since dropping waits until all pages are freed.
    pub fn evict(&self, mut copy: impl FnMut(&DevicePage, &Page) -> Result) -> Result {
        let npages = self.nr_pages();
        let mut src: KVVec<c_ulong> = KVVec::from_elem(0, npages, GFP_KERNEL)?;
        let mut dst: KVVec<c_ulong> = KVVec::from_elem(0, npages, GFP_KERNEL)?;
        // SAFETY: The pfns are those of this pagemap, which is mapped, and `src` has room for
        // `npages` entries.
        to_result(unsafe {
            bindings::migrate_device_range(src.as_mut_ptr(), self.first_pfn(), npages)
        })?;

        let mut ret = Ok(());
        for (s, d) in src.iter().zip(dst.iter_mut()) {
            if *s & MPFN_MIGRATE == 0 || *s & MPFN_VALID == 0 {
                continue;
            }
            // SAFETY: `migrate_pfn_to_page()` only decodes the entry.
            let spage = unsafe { bindings::migrate_pfn_to_page(*s) };
            if spage.is_null() {
                continue;
            }
            // SAFETY: The page is one of our pagemap, referenced and locked for the migration.
            let spage = unsafe { DevicePage::from_raw(spage) };
            let result = Page::alloc_page(GFP_KERNEL)
                .map_err(Error::from)
                .and_then(|dpage| copy(spage, &dpage).map(|()| dpage));
            match result {
                Ok(dpage) => {
                    let dpage = ManuallyDrop::new(dpage).as_ptr();
                    // SAFETY: `dpage` is a newly allocated page.
                    unsafe { bindings::lock_page(dpage) };
                    // SAFETY: `dpage` is valid; `migrate_pfn()` only encodes the pfn.
                    *d = unsafe { bindings::migrate_pfn(bindings::page_to_pfn(dpage)) }
                        | (*s & MPFN_WRITE);
                }
                Err(e) => {
                    if ret.is_ok() {
                        ret = Err(e);
                    }
                }
            }
        }
        // SAFETY: `src` was filled by `migrate_device_range()`; every non-zero `dst` entry is a
        // locked page whose reference is handed over.
        unsafe { bindings::migrate_device_pages(src.as_mut_ptr(), dst.as_mut_ptr(), npages) };
        // SAFETY: As above; this ends the migration started by `migrate_device_range()`.
        unsafe { bindings::migrate_device_finalize(src.as_mut_ptr(), dst.as_mut_ptr(), npages) };
        ret
    }
}
