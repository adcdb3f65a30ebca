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
        memremap::{
            DevPagemap,
            DevPagemapOps,
            DevicePage,
            DevicePrivateFault,
            LockedDevicePage, //
        },
        virt::VmaRef,
        MmapReadGuard,
    },
    page::{
        BorrowedPage,
        PAGE_MASK,
        PAGE_SHIFT,
        PAGE_SIZE, //
    },
    prelude::*,
    time::{
        delay::fsleep,
        Delta, //
    },
};
use core::{
    marker::PhantomData,
    mem::ManuallyDrop,
    ptr::NonNull, //
};

const MPFN_VALID: c_ulong = bindings::MIGRATE_PFN_VALID as c_ulong;
const MPFN_MIGRATE: c_ulong = bindings::MIGRATE_PFN_MIGRATE as c_ulong;
const MPFN_WRITE: c_ulong = bindings::MIGRATE_PFN_WRITE as c_ulong;

/// A new system memory page, the destination of a migration back to system memory.
///
/// The migration allocates the page: it is not mapped anywhere and nobody else has a reference
/// to it, so the driver fills it without synchronisation. A page the driver did not fill is
/// cleared before the migration maps it: a process never sees what the page held before.
///
/// # Invariants
///
/// `page` is an order-0 system memory page, not mapped and not locked, with one reference owned
/// by this object. If `filled` is true, all of it was written through [`DstPage::fill`].
pub struct DstPage<'a> {
    page: NonNull<bindings::page>,
    filled: bool,
    _p: PhantomData<&'a mut ()>,
}

impl DstPage<'_> {
    /// Takes over a newly allocated page.
    ///
    /// # Safety
    ///
    /// `page` must be a newly allocated order-0 page, not mapped anywhere, whose one reference
    /// the caller hands over.
    unsafe fn new(page: NonNull<bindings::page>) -> Self {
        // INVARIANT: By the safety requirements.
        Self {
            page,
            filled: false,
            _p: PhantomData,
        }
    }

    /// Copies `data`, which must be exactly one page long, to the page.
    ///
    /// Returns [`EINVAL`] if `data` is not [`PAGE_SIZE`] bytes long.
    pub fn fill(&mut self, data: &[u8]) -> Result {
        if data.len() != PAGE_SIZE {
            return Err(EINVAL);
        }
        // SAFETY: By the type invariants nobody else accesses the page; `data` is valid for
        // reading `PAGE_SIZE` bytes and cannot overlap the page, which nobody can borrow.
        unsafe { bindings::memcpy_to_page(self.page.as_ptr(), 0, data.as_ptr().cast(), PAGE_SIZE) };
        // INVARIANT: All of the page was written.
        self.filled = true;
        Ok(())
    }

    /// Clears the page unless it was filled, locks it, and returns it with its reference.
    fn into_locked_raw(self) -> *mut bindings::page {
        let this = ManuallyDrop::new(self);
        let page = this.page.as_ptr();
        if !this.filled {
            // SAFETY: By the type invariants nobody else accesses the page.
            unsafe { bindings::clear_highpage(page) };
        }
        // SAFETY: The page is not visible to anyone else, so locking it does not wait.
        unsafe { bindings::lock_page(page) };
        page
    }
}

impl Drop for DstPage<'_> {
    fn drop(&mut self) {
        // SAFETY: By the type invariants we own a reference, which we give up here.
        unsafe { bindings::put_page(self.page.as_ptr()) };
    }
}

/// Pages migrated per step of the teardown of a [`DevPagemap`].
const EVICT_CHUNK: usize = 32;

impl<T: DevPagemapOps> DevPagemap<T> {
    /// Migrates every page of the pagemap that is in use back to system memory, until none is
    /// left.
    ///
    /// Pages that cannot be migrated right now (locked by a fault, or referenced by someone
    /// else) are retried every 10 ms. Nothing here can fail: the arrays are on the stack and the
    /// system memory pages are allocated with `__GFP_NOFAIL`, as `lib/test_hmm.c` does.
    pub(crate) fn evict_all(&self) {
        let npages = self.nr_pages();
        let mut passes = 0u32;
        while self.nr_in_use() != 0 {
            let mut start = 0;
            while start < npages {
                let n = EVICT_CHUNK.min(npages - start);
                if (start..start + n).any(|offset| self.is_in_use(offset)) {
                    self.evict_chunk(start, n);
                }
                start += n;
            }
            if self.nr_in_use() == 0 {
                break;
            }
            // About every 10 seconds.
            passes += 1;
            if passes == 1000 {
                pr_warn!(
                    "{} device private pages still in use, retrying\n",
                    self.nr_in_use()
                );
                passes = 0;
            }
            fsleep(Delta::from_millis(10));
        }
    }

    /// Migrates the pages in use of `[start, start + n)` back to system memory.
    fn evict_chunk(&self, start: usize, n: usize) {
        let mut src: [c_ulong; EVICT_CHUNK] = [0; EVICT_CHUNK];
        let mut dst: [c_ulong; EVICT_CHUNK] = [0; EVICT_CHUNK];
        let n = n.min(EVICT_CHUNK);
        // SAFETY: The pfns are those of this pagemap, which is mapped, and `src` has room for
        // `n` entries.
        if unsafe { bindings::migrate_device_range(src.as_mut_ptr(), self.first_pfn() + start, n) }
            != 0
        {
            return;
        }
        for (s, d) in src.iter().zip(dst.iter_mut()).take(n) {
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
            // SAFETY: Allocating a page has no requirements.
            let page = unsafe {
                bindings::alloc_pages(bindings::GFP_HIGHUSER_MOVABLE | bindings::__GFP_NOFAIL, 0)
            };
            let Some(page) = NonNull::new(page) else {
                // `__GFP_NOFAIL` does not return NULL; the page is tried again.
                continue;
            };
            // SAFETY: `page` was just allocated; its reference is handed over.
            let mut dpage = unsafe { DstPage::new(page) };
            if let Err(e) = T::copy_to_ram(self, spage, &mut dpage) {
                pr_warn!(
                    "device private page {}: copy to system memory failed ({e:?}), its data is lost\n",
                    spage.offset()
                );
            }
            let dpage = dpage.into_locked_raw();
            // SAFETY: `dpage` is valid; `migrate_pfn()` only encodes the pfn.
            *d = unsafe { bindings::migrate_pfn(bindings::page_to_pfn(dpage)) } | (*s & MPFN_WRITE);
        }
        // SAFETY: `src` was filled by `migrate_device_range()`; every non-zero `dst` entry is a
        // locked page whose reference is handed over.
        unsafe { bindings::migrate_device_pages(src.as_mut_ptr(), dst.as_mut_ptr(), n) };
        // SAFETY: As above; this ends the migration started by `migrate_device_range()`.
        unsafe { bindings::migrate_device_finalize(src.as_mut_ptr(), dst.as_mut_ptr(), n) };
    }
}

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
    /// The entry is being migrated but has no page yet (it was never touched). A device
    /// destination must read as zeroes; a system memory destination that is not filled does.
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
/// destination: a device page with [`MigrateVma::set_dst_device`], or a system memory page that
/// the migration allocates with [`MigrateVma::set_dst_system`]. [`MigrateVma::migrate`] moves the
/// entries that have a destination; the others stay where they are. Dropping the object (or
/// [`MigrateVma::finalize`]) restores the page tables and unlocks the pages; if
/// [`MigrateVma::migrate`] was not called, the migration is aborted: the destinations are freed
/// and every page stays where it was.
///
/// The object borrows the [`MmapReadGuard`] (or the fault) it was created from, so the mmap read
/// lock that `migrate_vma_setup()` requires is held until it is finalized, and the
/// [`DevPagemap`], whose pages it may hold.
///
/// # Examples
///
/// Migrating a range of a process's memory to a device:
///
/// ```
/// use kernel::mm::{
///     memremap::{DevPagemap, DevPagemapOps},
///     migrate::{MigrateSelect, MigrateSrc, MigrateVma},
///     MmWithUser,
/// };
///
/// /// Returns how many pages of `[start, end)` moved to the device of `pagemap`.
/// fn to_device<T: DevPagemapOps>(
///     mm: &MmWithUser,
///     (start, end): (usize, usize),
///     pagemap: &DevPagemap<T>,
/// ) -> Result<usize> {
///     let guard = mm.mmap_read_lock();
///     let mut migration = MigrateVma::setup(&guard, start, end, MigrateSelect::System, pagemap)?;
///     for i in 0..migration.npages() {
///         if matches!(migration.src(i), MigrateSrc::Skip) {
///             continue;
///         }
///         let page = pagemap.alloc_page()?;
///         // Copy the source (`MigrateVma::read_src`) to the device memory of `page` here. An
///         // error returned now aborts the migration: nothing moves.
///         migration.set_dst_device(i, page)?;
///     }
///     migration.migrate();
///     Ok((0..migration.npages()).filter(|&i| migration.is_migrated(i)).count())
/// }
///
/// // KUnit runs this in a kernel thread, which has no user memory to migrate.
/// assert!(kernel::current!().mm().is_none());
/// ```
///
/// # Invariants
///
/// - `args` was passed to a successful `migrate_vma_setup()`, with the mmap read lock of
///   `args.vma`'s mm held for `'a`; its `src` and `dst` point to the buffers of `src` and `dst`,
///   which have `args.npages` entries each.
/// - `migrate_vma_finalize()` has not been called yet; `migrated` tells whether
///   `migrate_vma_pages()` was called.
/// - Every non-zero `dst` entry holds a locked page with a reference owned by the migration,
///   which nobody else accesses, and its entry in `src` has `MIGRATE_PFN_MIGRATE`.
pub struct MigrateVma<'a> {
    args: bindings::migrate_vma,
    src: KVVec<c_ulong>,
    dst: KVVec<c_ulong>,
    migrated: bool,
    _p: PhantomData<&'a VmaRef>,
}

impl<'a> MigrateVma<'a> {
    /// Collects the pages selected by `select` of `[start, end)` of the mm locked by `mm` for
    /// migration.
    ///
    /// `start` and `end` must be page aligned and within one VMA: [`EFAULT`] is returned if no
    /// VMA contains `start`, [`EINVAL`] if the range is empty, unaligned or does not end in that
    /// VMA. With [`MigrateSelect::DevicePrivate`] only pages of `pagemap` are selected.
    pub fn setup<T: DevPagemapOps>(
        mm: &'a MmapReadGuard<'_>,
        start: usize,
        end: usize,
        select: MigrateSelect,
        pagemap: &'a DevPagemap<T>,
    ) -> Result<Self> {
        let vma = mm.vma_lookup(start).ok_or(EFAULT)?;
        Self::new(vma, start, end, select, pagemap, core::ptr::null_mut())
    }

    /// Collects the faulting page of `fault` for migration back to system memory.
    ///
    /// This is the way [`DevPagemapOps::migrate_to_ram`] migrates the page.
    pub fn for_fault<T: DevPagemapOps>(fault: &'a DevicePrivateFault<'_, T>) -> Result<Self> {
        let start = fault.address() & PAGE_MASK;
        let end = start.checked_add(PAGE_SIZE).ok_or(EINVAL)?;
        Self::new(
            fault.vma(),
            start,
            end,
            MigrateSelect::DevicePrivate,
            fault.pagemap(),
            fault.vm_fault().page_ptr(),
        )
    }

    // The callers make sure that the mmap read lock of `vma`'s mm is held for `'a`.
    fn new<T: DevPagemapOps>(
        vma: &VmaRef,
        start: usize,
        end: usize,
        select: MigrateSelect,
        pagemap: &'a DevPagemap<T>,
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

        // SAFETY: `args` describes a range within `vma`, whose mm's mmap read lock is held (the
        // callers borrow an `MmapReadGuard` or a `DevicePrivateFault` for `'a`), and `src` and
        // `dst` have room for every page of the range.
        to_result(unsafe { bindings::migrate_vma_setup(&mut args) })?;
        // INVARIANT: `migrate_vma_setup()` succeeded under the lock; the buffers of the vectors
        // do not move when the vectors do; no destination is set.
        Ok(Self {
            args,
            src,
            dst,
            migrated: false,
            _p: PhantomData,
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
            // SAFETY: Only device-private pages of the pagemap whose owner is in
            // `args.pgmap_owner` are collected: a `DevPagemap`. They stay referenced until the
            // migration is finalized.
            MigrateSrc::DevicePrivate(unsafe { DevicePage::from_raw(page.as_ptr()) })
        } else {
            // SAFETY: The page is a system memory page, referenced until the migration is
            // finalized, which cannot happen while `self` is borrowed.
            MigrateSrc::System(unsafe { BorrowedPage::from_raw(page) })
        }
    }

    /// Copies the content of system memory source page `i` to `buf`, which must be exactly one
    /// page long.
    ///
    /// Returns [`EINVAL`] if `buf` is not [`PAGE_SIZE`] bytes long or entry `i` is not a system
    /// memory page being migrated. The copy is done by `memcpy_from_page()`: the page is
    /// unmapped, but someone holding a reference to it (a `get_user_pages()` user, which makes
    /// the migration of the page fail) may still write it meanwhile, like a user page under
    /// `copy_from_user()`.
    pub fn read_src(&self, i: usize, buf: &mut [u8]) -> Result {
        if buf.len() != PAGE_SIZE {
            return Err(EINVAL);
        }
        let MigrateSrc::System(page) = self.src(i) else {
            return Err(EINVAL);
        };
        // SAFETY: The page is valid while `self` is borrowed; `buf` is valid for writing
        // `PAGE_SIZE` bytes and is not part of the page, which is not mapped.
        unsafe { bindings::memcpy_from_page(buf.as_mut_ptr().cast(), page.as_ptr(), 0, PAGE_SIZE) };
        Ok(())
    }

    /// Returns whether entry `i` was mapped writable.
    #[inline]
    pub fn src_is_write(&self, i: usize) -> bool {
        self.src.get(i).is_some_and(|&mpfn| mpfn & MPFN_WRITE != 0)
    }

    /// Returns whether entry `i` was migrated; meaningful after [`MigrateVma::migrate`].
    #[inline]
    pub fn is_migrated(&self, i: usize) -> bool {
        self.migrated
            && self.dst.get(i).is_some_and(|&mpfn| mpfn != 0)
            && self
                .src
                .get(i)
                .is_some_and(|&mpfn| mpfn & MPFN_MIGRATE != 0)
    }

    fn check_dst(&self, i: usize) -> Result {
        if self.migrated {
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
    /// `page` must be a locked page with a reference that the caller gives up, which nobody
    /// else accesses, and `check_dst(i)` must have succeeded.
    unsafe fn set_dst_raw(&mut self, i: usize, page: *mut bindings::page) {
        let write = self.src[i] & MPFN_WRITE;
        // SAFETY: `page` is a valid page.
        let pfn = unsafe { bindings::page_to_pfn(page) };
        // SAFETY: `migrate_pfn()` only encodes the pfn.
        // INVARIANT: The caller guarantees that `page` is locked with a reference for us, and
        // `check_dst(i)` that the entry is being migrated.
        self.dst[i] = unsafe { bindings::migrate_pfn(pfn) } | write;
    }

    /// Sets device-private `page` as destination of entry `i`.
    ///
    /// Returns [`EINVAL`] if `i` is out of range or the entry is not being migrated, and
    /// [`EBUSY`] if it already has a destination or the migration is done; `page` is dropped
    /// (freed) then. The page must read as zeroes if the source is [`MigrateSrc::Empty`].
    pub fn set_dst_device(&mut self, i: usize, page: LockedDevicePage<'a>) -> Result {
        self.check_dst(i)?;
        let page = page.into_raw();
        // SAFETY: `page` was locked with a reference, which we take over; it is a new page
        // that only its `LockedDevicePage` gave access to.
        unsafe { self.set_dst_raw(i, page) };
        Ok(())
    }

    /// Allocates a system memory page as destination of entry `i`, filled by `fill`.
    ///
    /// The page is allocated for the VMA and address of the entry (`GFP_HIGHUSER_MOVABLE`, the
    /// VMA's memory policy). If `fill` does not fill it, it is cleared. If `fill` fails, the page
    /// is freed and the entry keeps no destination. Errors are those of
    /// [`MigrateVma::set_dst_device`], [`ENOMEM`] and those of `fill`.
    pub fn set_dst_system(
        &mut self,
        i: usize,
        fill: impl FnOnce(&mut DstPage<'_>) -> Result,
    ) -> Result {
        self.check_dst(i)?;
        let addr = self.args.start + (i << PAGE_SHIFT);
        // SAFETY: `args.vma` is valid and locked while `self` exists; `addr` is within it.
        let page = unsafe {
            bindings::alloc_page_vma(bindings::GFP_HIGHUSER_MOVABLE, self.args.vma, addr)
        };
        let page = NonNull::new(page).ok_or(ENOMEM)?;
        // SAFETY: `page` was just allocated; its reference is handed over.
        let mut dpage = unsafe { DstPage::new(page) };
        fill(&mut dpage)?;
        let page = dpage.into_locked_raw();
        // SAFETY: `page` is locked with a reference, which we take over; nobody else has it.
        unsafe { self.set_dst_raw(i, page) };
        Ok(())
    }

    /// Migrates the entries that have a destination (`migrate_vma_pages()`).
    ///
    /// No destination can be set afterwards. Does nothing when called again.
    pub fn migrate(&mut self) {
        if !self.migrated {
            // SAFETY: By the type invariants setup succeeded and finalize was not called.
            unsafe { bindings::migrate_vma_pages(&mut self.args) };
            self.migrated = true;
        }
    }

    /// Finishes the migration (`migrate_vma_finalize()`): the same as dropping the object.
    ///
    /// Unless [`MigrateVma::migrate`] was called, nothing is migrated.
    pub fn finalize(self) {}
}

impl Drop for MigrateVma<'_> {
    fn drop(&mut self) {
        if !self.migrated {
            // Abort: give the destinations back, so that finalize restores every source.
            for d in self.dst.iter_mut().filter(|d| **d != 0) {
                // SAFETY: `migrate_pfn_to_page()` only decodes the entry.
                let page = unsafe { bindings::migrate_pfn_to_page(*d) };
                // SAFETY: By the type invariants the page is locked and we own a reference.
                unsafe { bindings::unlock_page(page) };
                // SAFETY: As above; the reference is given up.
                unsafe { bindings::put_page(page) };
                *d = 0;
            }
        }
        // SAFETY: By the type invariants setup succeeded and finalize was not called; it is
        // called exactly once, here. Entries without a destination are restored.
        unsafe { bindings::migrate_vma_finalize(&mut self.args) };
    }
}

#[cfg(CONFIG_RUST_MEMREMAP_KUNIT_TEST)]
#[macros::kunit_tests(rust_kernel_migrate)]
mod tests {
    use super::*;
    use crate::{
        alloc::KVec,
        ffi::c_ulong,
        mm::memremap::DevicePrivateRegion,
        page::Page,
        sync::atomic::{
            Atomic,
            Relaxed, //
        },
        uaccess::{
            UserPtr,
            UserSlice, //
        },
        uapi,
    };

    /// A device whose memory holds one byte value per page; a page holding `FAIL_BYTE` cannot
    /// be copied back to system memory.
    struct ByteDevice {
        bytes: KVVec<Atomic<u32>>,
    }

    const FAIL_BYTE: u8 = 0xee;

    impl ByteDevice {
        fn byte(&self, offset: usize) -> Result<u8> {
            let byte = self.bytes.get(offset).ok_or(EINVAL)?.load(Relaxed);
            u8::try_from(byte).map_err(|_| EINVAL)
        }

        fn set(&self, offset: usize, byte: u8) -> Result {
            self.bytes
                .get(offset)
                .ok_or(EINVAL)?
                .store(byte.into(), Relaxed);
            Ok(())
        }

        fn copy_out(&self, offset: usize, dst: &mut DstPage<'_>) -> Result {
            let byte = self.byte(offset)?;
            if byte == FAIL_BYTE {
                return Err(EIO);
            }
            dst.fill(&KVec::from_elem(byte, PAGE_SIZE, GFP_KERNEL)?)
        }
    }

    #[vtable]
    impl DevPagemapOps for ByteDevice {
        fn folio_free(pagemap: &DevPagemap<Self>, page: &DevicePage) {
            let _ = pagemap.data().set(page.offset(), 0);
        }

        fn migrate_to_ram(fault: &DevicePrivateFault<'_, Self>) -> Result {
            let pagemap = fault.pagemap();
            let mut migration = MigrateVma::for_fault(fault)?;
            for i in 0..migration.npages() {
                let offset = match migration.src(i) {
                    MigrateSrc::DevicePrivate(page) => page.offset(),
                    _ => continue,
                };
                migration.set_dst_system(i, |dst| pagemap.data().copy_out(offset, dst))?;
            }
            migration.migrate();
            Ok(())
        }

        fn copy_to_ram(
            pagemap: &DevPagemap<Self>,
            page: &DevicePage,
            dst: &mut DstPage<'_>,
        ) -> Result {
            pagemap.data().copy_out(page.offset(), dst)
        }
    }

    fn new_pagemap() -> Result<Pin<KBox<DevPagemap<ByteDevice>>>> {
        let region = DevicePrivateRegion::new(1, c"rust_kunit")?;
        let mut bytes = KVVec::with_capacity(region.nr_pages(), GFP_KERNEL)?;
        for _ in 0..region.nr_pages() {
            bytes
                .push_within_capacity(Atomic::new(0))
                .map_err(|_| ENOMEM)?;
        }
        KBox::pin_init(DevPagemap::new(region, ByteDevice { bytes }), GFP_KERNEL)
    }

    /// Maps `npages` pages of anonymous memory into the test's own mm (`kunit_vm_mmap()`),
    /// page `i` filled with `byte(i)`.
    fn user_pages(npages: usize, byte: impl Fn(usize) -> u8) -> Result<usize> {
        let len = npages * PAGE_SIZE;
        // SAFETY: Called from a KUnit test, which `kunit_get_current_test()` returns; the mapping
        // is unmapped when the test ends.
        let addr = unsafe {
            bindings::kunit_vm_mmap(
                bindings::kunit_get_current_test(),
                core::ptr::null_mut(),
                0,
                len as c_ulong,
                (uapi::PROT_READ | uapi::PROT_WRITE) as c_ulong,
                (uapi::MAP_PRIVATE | uapi::MAP_ANONYMOUS) as c_ulong,
                0,
            )
        } as usize;
        if addr == 0 || addr > usize::MAX - bindings::MAX_ERRNO as usize {
            return Err(ENOMEM);
        }
        for i in 0..npages {
            let data = KVec::from_elem(byte(i), PAGE_SIZE, GFP_KERNEL)?;
            UserSlice::new(UserPtr::from_addr(addr + i * PAGE_SIZE), PAGE_SIZE)
                .writer()
                .write_slice(&data)?;
        }
        Ok(addr)
    }

    /// Reads page `i` at `addr` through the CPU; returns its byte if all bytes are equal.
    fn user_byte(addr: usize, i: usize) -> Result<Option<u8>> {
        let mut data = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
        UserSlice::new(UserPtr::from_addr(addr + i * PAGE_SIZE), PAGE_SIZE)
            .reader()
            .read_slice(&mut data)?;
        Ok(data.iter().all(|&b| b == data[0]).then_some(data[0]))
    }

    /// Migrates the system memory pages of `[addr, addr + npages pages)` to the device; with
    /// `commit` false, returns after setting the destinations, as a driver does on an error.
    /// Returns how many pages moved.
    fn to_device(
        pagemap: &DevPagemap<ByteDevice>,
        addr: usize,
        npages: usize,
        commit: bool,
    ) -> Result<usize> {
        let task = crate::current!();
        let mm = task.mm().ok_or(EINVAL)?;
        let guard = mm.mmap_read_lock();
        let end = addr + npages * PAGE_SIZE;
        let mut migration = MigrateVma::setup(&guard, addr, end, MigrateSelect::System, pagemap)?;
        let mut buf = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
        for i in 0..migration.npages() {
            if !matches!(migration.src(i), MigrateSrc::System(_)) {
                continue;
            }
            migration.read_src(i, &mut buf)?;
            let page = pagemap.alloc_page()?;
            pagemap.data().set(page.offset(), buf[0])?;
            migration.set_dst_device(i, page)?;
        }
        if commit {
            migration.migrate();
        }
        Ok((0..migration.npages())
            .filter(|&i| migration.is_migrated(i))
            .count())
    }

    #[test]
    fn abort_unless_migrated() -> Result {
        let pagemap = new_pagemap()?;
        let addr = user_pages(4, |i| 0x10 + i as u8)?;

        // Destinations set, then an early return: nothing moves, the device pages are freed.
        assert_eq!(to_device(&pagemap, addr, 4, false)?, 0);
        assert_eq!(pagemap.nr_in_use(), 0);
        for i in 0..4 {
            assert_eq!(user_byte(addr, i)?, Some(0x10 + i as u8));
        }
        assert_eq!(pagemap.nr_in_use(), 0);

        // Committed: the pages move; a CPU access brings each back (`migrate_to_ram`).
        assert_eq!(to_device(&pagemap, addr, 4, true)?, 4);
        assert_eq!(pagemap.nr_in_use(), 4);
        for i in 0..4 {
            assert_eq!(user_byte(addr, i)?, Some(0x10 + i as u8));
        }
        assert_eq!(pagemap.nr_in_use(), 0);
        Ok(())
    }

    #[test]
    fn unfilled_destination_reads_zero() -> Result {
        let pagemap = new_pagemap()?;
        let addr = user_pages(2, |_| 0x77)?;
        assert_eq!(to_device(&pagemap, addr, 2, true)?, 2);

        // Leave stale data in a page that the page allocator is likely to hand out next.
        let stale = Page::alloc_page(GFP_KERNEL)?;
        let garbage = KVec::from_elem(0xa5u8, PAGE_SIZE, GFP_KERNEL)?;
        // SAFETY: The page was just allocated and nobody else accesses it.
        unsafe { stale.write_raw(garbage.as_ptr(), 0, PAGE_SIZE)? };
        drop(stale);

        {
            let task = crate::current!();
            let mm = task.mm().ok_or(EINVAL)?;
            let guard = mm.mmap_read_lock();
            let end = addr + 2 * PAGE_SIZE;
            let mut migration =
                MigrateVma::setup(&guard, addr, end, MigrateSelect::DevicePrivate, &*pagemap)?;
            assert!(matches!(migration.src(0), MigrateSrc::DevicePrivate(_)));
            migration.set_dst_system(0, |_| Ok(()))?;
            migration.set_dst_system(1, |dst| {
                dst.fill(&KVec::from_elem(0x33u8, PAGE_SIZE, GFP_KERNEL)?)
            })?;
            // Bad input: a second destination, a short fill.
            assert_eq!(migration.set_dst_system(1, |_| Ok(())).err(), Some(EBUSY));
            assert_eq!(migration.set_dst_system(2, |_| Ok(())).err(), Some(EINVAL));
            migration.migrate();
            assert!(migration.is_migrated(0) && migration.is_migrated(1));
            assert_eq!(migration.set_dst_system(0, |_| Ok(())).err(), Some(EBUSY));
        }
        assert_eq!(user_byte(addr, 0)?, Some(0));
        assert_eq!(user_byte(addr, 1)?, Some(0x33));
        assert_eq!(pagemap.nr_in_use(), 0);
        Ok(())
    }

    #[test]
    fn teardown_migrates_back() -> Result {
        let pagemap = new_pagemap()?;
        let npages = 40;
        // One page more than a step of the teardown; the last one fails to copy.
        let addr = user_pages(npages, |i| {
            if i == npages - 1 {
                FAIL_BYTE
            } else {
                0x40 + i as u8
            }
        })?;
        assert_eq!(to_device(&pagemap, addr, npages, true)?, npages);
        assert_eq!(pagemap.nr_in_use(), npages);
        let start = pagemap.region().start();
        let size = pagemap.region().size();

        // Dropping the pagemap migrates every page back first, even one the device fails to
        // copy (it comes back as zeroes).
        drop(pagemap);
        for i in 0..npages - 1 {
            assert_eq!(user_byte(addr, i)?, Some(0x40 + i as u8));
        }
        assert_eq!(user_byte(addr, npages - 1)?, Some(0));
        let again = DevicePrivateRegion::new(size as usize, c"rust_kunit")?;
        assert_eq!(again.start(), start);
        Ok(())
    }
}
