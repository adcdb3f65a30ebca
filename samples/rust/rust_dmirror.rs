// SPDX-License-Identifier: GPL-2.0

//! Rust device-private memory sample: a test device in the style of `lib/test_hmm.c`.
//!
//! The module reserves one memory section of device-private pfns, creates its pages with a
//! [`DevPagemap`] and registers the misc device `/dev/rust_dmirror`. Its "device memory" is
//! simulated with one system memory page per device page in use.
//!
//! The device implements these ioctls of `lib/test_hmm_uapi.h`, with the same ABI as
//! `test_hmm`, so that the same userspace tests can drive both:
//!
//! - `HMM_DMIRROR_MIGRATE_TO_DEV`: migrate a range of the caller's memory to the device and
//!   copy what the device sees to `ptr`.
//! - `HMM_DMIRROR_MIGRATE_TO_SYS`: migrate the pages of a range that are on the device back to
//!   system memory.
//! - `HMM_DMIRROR_READ` / `HMM_DMIRROR_WRITE`: "device" access to a range of the caller's memory:
//!   pages on the device are accessed in device memory, other pages through the CPU.
//!
//! A CPU access to a page on the device migrates it back (`migrate_to_ram`). On unload, pages
//! still on the device are migrated back first.

use core::cmp::min;
use kernel::{
    fs::File,
    ioctl::_IOWR,
    miscdevice::{
        MiscDevice,
        MiscDeviceOptions,
        MiscDeviceRegistration, //
    },
    mm::{
        fault::VmFault,
        memremap::{
            DevPagemap,
            DevPagemapOps,
            DevicePage,
            DevicePrivateRegion, //
        },
        migrate::{
            MigrateSelect,
            MigrateSrc,
            MigrateVma, //
        },
        virt::{
            flags,
            vm_flags_t,
            VmaRef, //
        },
        MmWithUser,
    },
    new_spinlock,
    page::{
        Page,
        PAGE_MASK,
        PAGE_SIZE, //
    },
    prelude::*,
    sync::{
        Arc,
        ArcBorrow,
        SpinLock, //
    },
    transmute::{
        AsBytes,
        FromBytes, //
    },
    uaccess::{
        UserPtr,
        UserSlice, //
    },
};

module! {
    type: DmirrorModule,
    name: "rust_dmirror",
    authors: ["sparsemem-devmem developers"],
    description: "Rust device-private memory (HMM) sample",
    license: "GPL",
}

/// `struct hmm_dmirror_cmd` of `lib/test_hmm_uapi.h`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct HmmDmirrorCmd {
    addr: u64,
    ptr: u64,
    npages: u64,
    cpages: u64,
    faults: u64,
}

// SAFETY: `HmmDmirrorCmd` only has integer fields and no padding, any bit pattern is valid.
unsafe impl FromBytes for HmmDmirrorCmd {}
// SAFETY: `HmmDmirrorCmd` only has integer fields and no padding.
unsafe impl AsBytes for HmmDmirrorCmd {}

const HMM_DMIRROR_READ: u32 = _IOWR::<HmmDmirrorCmd>('H' as u32, 0x00);
const HMM_DMIRROR_WRITE: u32 = _IOWR::<HmmDmirrorCmd>('H' as u32, 0x01);
const HMM_DMIRROR_MIGRATE_TO_DEV: u32 = _IOWR::<HmmDmirrorCmd>('H' as u32, 0x02);
const HMM_DMIRROR_MIGRATE_TO_SYS: u32 = _IOWR::<HmmDmirrorCmd>('H' as u32, 0x03);

/// Size of the device memory: rounded up to one memory section.
const DEVICE_SIZE: usize = 1 << 20;

/// Pages handled per migration or access step.
const CHUNK_PAGES: usize = 64;

/// The simulated device memory: one system page per device page in use, by offset.
#[pin_data]
struct Backing {
    #[pin]
    pages: SpinLock<KVVec<Option<Page>>>,
}

impl Backing {
    fn new(nr_pages: usize) -> Result<Arc<Self>> {
        let mut pages = KVVec::with_capacity(nr_pages, GFP_KERNEL)?;
        for _ in 0..nr_pages {
            pages.push_within_capacity(None).map_err(|_| ENOMEM)?;
        }
        Arc::pin_init(
            pin_init!(Self {
                pages <- new_spinlock!(pages),
            }),
            GFP_KERNEL,
        )
    }

    /// Sets the memory of device page `offset`; returns the page it replaces.
    fn store(&self, offset: usize, page: Page) -> Result<Option<Page>> {
        let mut pages = self.pages.lock();
        let slot = pages.get_mut(offset).ok_or(EINVAL)?;
        Ok(slot.replace(page))
    }

    /// Removes the memory of device page `offset`.
    fn take(&self, offset: usize) -> Option<Page> {
        self.pages.lock().get_mut(offset).and_then(Option::take)
    }

    /// Copies the memory of device page `offset` to `buf` (one page).
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result {
        let len = min(buf.len(), PAGE_SIZE);
        let pages = self.pages.lock();
        let page = pages.get(offset).and_then(Option::as_ref).ok_or(EIO)?;
        // SAFETY: `buf` is valid for writing `len` bytes and does not overlap the page.
        unsafe { page.read_raw(buf.as_mut_ptr(), 0, len) }
    }

    /// Copies `buf` (one page) to the memory of device page `offset`.
    fn write(&self, offset: usize, buf: &[u8]) -> Result {
        let len = min(buf.len(), PAGE_SIZE);
        let pages = self.pages.lock();
        let page = pages.get(offset).and_then(Option::as_ref).ok_or(EIO)?;
        // SAFETY: `buf` is valid for reading `len` bytes and does not overlap the page.
        unsafe { page.write_raw(buf.as_ptr(), 0, len) }
    }

    /// Copies the memory of device page `offset` to `dst`, through `buf` (one page).
    fn copy_to_page(&self, offset: usize, dst: &Page, buf: &mut [u8]) -> Result {
        self.read(offset, buf)?;
        // SAFETY: `buf` is valid for reading and does not overlap `dst`.
        unsafe { dst.write_raw(buf.as_ptr(), 0, min(buf.len(), PAGE_SIZE)) }
    }
}

struct DmirrorOps;

#[vtable]
impl DevPagemapOps for DmirrorOps {
    type Ptr = Arc<Backing>;

    fn folio_free(backing: ArcBorrow<'_, Backing>, page: &DevicePage) {
        // Free the device memory outside of the lock.
        drop(backing.take(page.offset()));
    }

    fn migrate_to_ram(
        backing: ArcBorrow<'_, Backing>,
        pagemap: &DevPagemap<Self>,
        fault: &VmFault,
    ) -> Result {
        let mut buf = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
        let mut migration = MigrateVma::for_fault(fault, pagemap)?;
        to_system(&backing, pagemap, &mut migration, &mut buf)?;
        migration.finalize();
        Ok(())
    }
}

/// Sets system memory destinations, with the content of device memory, for the device pages
/// collected by `migration`. Returns how many.
fn to_system(
    backing: &Backing,
    pagemap: &DevPagemap<DmirrorOps>,
    migration: &mut MigrateVma<'_>,
    buf: &mut [u8],
) -> Result<u64> {
    let mut count = 0;
    for i in 0..migration.npages() {
        let offset = match migration.src(i) {
            MigrateSrc::DevicePrivate(page) if pagemap.owns(page) => page.offset(),
            _ => continue,
        };
        let page = Page::alloc_page(GFP_KERNEL)?;
        backing.copy_to_page(offset, &page, buf)?;
        migration.set_dst_page(i, page)?;
        count += 1;
    }
    Ok(count)
}

/// The module, owning the device memory and the misc device.
///
/// The misc device is declared first so that it is deregistered before the pagemap is dropped.
#[pin_data(PinnedDrop)]
struct DmirrorModule {
    #[pin]
    miscdev: MiscDeviceRegistration<DmirrorFile>,
    #[pin]
    pagemap: DevPagemap<DmirrorOps>,
}

impl kernel::InPlaceModule for DmirrorModule {
    fn init(_module: &'static ThisModule) -> impl PinInit<Self, Error> {
        let options = MiscDeviceOptions {
            name: c"rust_dmirror",
        };

        try_pin_init!(Self {
            pagemap <- {
                let region = DevicePrivateRegion::new(DEVICE_SIZE, c"rust_dmirror")?;
                pr_info!(
                    "device memory: pfns [{:#x}, {:#x}), {} pages\n",
                    region.start() >> kernel::page::PAGE_SHIFT,
                    (region.start() + region.size()) >> kernel::page::PAGE_SHIFT,
                    region.nr_pages()
                );
                let backing = Backing::new(region.nr_pages())?;
                DevPagemap::new(region, backing)
            },
            miscdev <- MiscDeviceRegistration::register(options),
        }? Error)
    }
}

#[pinned_drop]
impl PinnedDrop for DmirrorModule {
    fn drop(self: Pin<&mut Self>) {
        // Dropping the pagemap waits for all device pages to be freed: migrate those that are
        // still in use back to system memory.
        let backing = self.pagemap.data();
        let in_use = self.pagemap.nr_pages() - self.pagemap.nr_free();
        if in_use == 0 {
            return;
        }
        pr_info!("migrating {in_use} pages back to system memory\n");
        let result = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)
            .map_err(Error::from)
            .and_then(|mut buf| {
                self.pagemap
                    .evict(|dpage, page| backing.copy_to_page(dpage.offset(), page, &mut buf))
            });
        if let Err(e) = result {
            pr_err!("failed to migrate device pages back: {e:?}\n");
        }
    }
}

/// An open file of the device.
struct DmirrorFile {
    module: &'static DmirrorModule,
}

/// Validates the range of `cmd` and returns its start and end addresses.
fn cmd_range(cmd: &HmmDmirrorCmd, max_pages: usize) -> Result<(usize, usize)> {
    let start = usize::try_from(cmd.addr).map_err(|_| EINVAL)?;
    let npages = usize::try_from(cmd.npages).map_err(|_| EINVAL)?;
    if npages == 0 || npages > max_pages || start & !PAGE_MASK != 0 {
        return Err(EINVAL);
    }
    let end = npages
        .checked_mul(PAGE_SIZE)
        .and_then(|size| start.checked_add(size))
        .ok_or(EINVAL)?;
    Ok((start, end))
}

/// VMAs that `migrate_vma_setup()` refuses: they cannot hold device-private pages.
const NO_DEVICE_PAGES: vm_flags_t =
    flags::HUGETLB | flags::IO | flags::DONTEXPAND | flags::PFNMAP | flags::MIXEDMAP;

/// Checks that the device may migrate the pages of `vma`, as `test_hmm` does.
fn check_migrate_vma(vma: &VmaRef) -> Result {
    if vma.flags() & flags::READ == 0 {
        return Err(EINVAL);
    }
    Ok(())
}

impl DmirrorFile {
    /// `HMM_DMIRROR_READ` and `HMM_DMIRROR_WRITE`.
    ///
    /// With `fault`, pages that are not on the device are accessed through the CPU, which faults
    /// them in; without it, such a page fails the call with `ENOENT` (what the device sees of a
    /// range it was asked to migrate).
    fn access(&self, mm: &MmWithUser, cmd: &mut HmmDmirrorCmd, write: bool, fault: bool) -> Result {
        // Like `test_hmm`, any size that fits the address space is accepted.
        let (start, end) = cmd_range(cmd, usize::MAX >> kernel::page::PAGE_SHIFT)?;
        let ptr = usize::try_from(cmd.ptr).map_err(|_| EINVAL)?;
        let pagemap = &self.module.pagemap;
        let backing = pagemap.data();
        let mut buf = KVVec::from_elem(0u8, CHUNK_PAGES * PAGE_SIZE, GFP_KERNEL)?;
        cmd.cpages = 0;
        cmd.faults = 0;

        let mut chunk = start;
        while chunk < end {
            let chunk_end = min(end, chunk + CHUNK_PAGES * PAGE_SIZE);
            let len = chunk_end - chunk;
            let user = ptr + (chunk - start);
            if write {
                UserSlice::new(UserPtr::from_addr(user), len)
                    .reader()
                    .read_slice(&mut buf[..len])?;
            }

            // Pages on the device: access device memory. To find them, collect them for a
            // migration back to system memory, which then does not migrate any.
            let mut on_device = [false; CHUNK_PAGES];
            {
                let guard = mm.mmap_read_lock();
                let mut addr = chunk;
                while addr < chunk_end {
                    let vma = guard.vma_lookup(addr).ok_or(EFAULT)?;
                    let vma_end = min(chunk_end, vma.end());
                    // Like a device fault through hmm_range_fault(): no access without the
                    // permission.
                    if vma.flags() & flags::READ == 0 {
                        return Err(EFAULT);
                    }
                    if write && vma.flags() & flags::WRITE == 0 {
                        return Err(EPERM);
                    }
                    if vma.flags() & NO_DEVICE_PAGES != 0 {
                        addr = vma_end;
                        continue;
                    }
                    let migration = MigrateVma::setup(
                        vma,
                        addr,
                        vma_end,
                        MigrateSelect::DevicePrivate,
                        pagemap,
                    )?;
                    for i in 0..migration.npages() {
                        let MigrateSrc::DevicePrivate(page) = migration.src(i) else {
                            continue;
                        };
                        if !pagemap.owns(page) {
                            continue;
                        }
                        let index = (addr - chunk) / PAGE_SIZE + i;
                        let data = &mut buf[index * PAGE_SIZE..(index + 1) * PAGE_SIZE];
                        if write {
                            backing.write(page.offset(), data)?;
                        } else {
                            backing.read(page.offset(), data)?;
                        }
                        on_device[index] = true;
                    }
                    migration.finalize();
                    addr = vma_end;
                }
            }

            // Other pages: access them through the CPU, which faults them in if needed.
            let mut faulted = false;
            for (index, _) in on_device.iter().enumerate().filter(|(_, d)| !**d) {
                let off = index * PAGE_SIZE;
                if off >= len {
                    break;
                }
                if !fault {
                    return Err(ENOENT);
                }
                let addr = UserPtr::from_addr(chunk + off);
                let data = &mut buf[off..off + PAGE_SIZE];
                if write {
                    UserSlice::new(addr, PAGE_SIZE).writer().write_slice(data)?;
                } else {
                    UserSlice::new(addr, PAGE_SIZE).reader().read_slice(data)?;
                }
                faulted = true;
            }
            // Like `test_hmm`, the first fault brings in the rest of the range: one per call.
            if faulted {
                cmd.faults = 1;
            }

            if !write {
                UserSlice::new(UserPtr::from_addr(user), len)
                    .writer()
                    .write_slice(&buf[..len])?;
            }
            cmd.cpages += (len / PAGE_SIZE) as u64;
            chunk = chunk_end;
        }
        Ok(())
    }

    /// Migrates the range `[start, end)` of `mm` in steps of at most [`CHUNK_PAGES`] pages,
    /// none of which crosses a VMA: each step collects the pages that `select` picks, `step`
    /// sets their destinations, and the step is finalized.
    fn migrate_range(
        &self,
        mm: &MmWithUser,
        (start, end): (usize, usize),
        select: MigrateSelect,
        mut step: impl FnMut(&mut MigrateVma<'_>) -> Result,
    ) -> Result {
        let guard = mm.mmap_read_lock();
        let mut addr = start;
        while addr < end {
            let vma = guard.vma_lookup(addr).ok_or(EINVAL)?;
            check_migrate_vma(vma)?;
            let step_end = min(min(end, vma.end()), addr + CHUNK_PAGES * PAGE_SIZE);
            let mut migration =
                MigrateVma::setup(vma, addr, step_end, select, &self.module.pagemap)?;
            step(&mut migration)?;
            migration.finalize();
            addr = step_end;
        }
        Ok(())
    }

    /// `HMM_DMIRROR_MIGRATE_TO_DEV`.
    fn migrate_to_dev(&self, mm: &MmWithUser, cmd: &mut HmmDmirrorCmd) -> Result {
        let pagemap = &self.module.pagemap;
        // A range larger than the device cannot fit.
        let range = cmd_range(cmd, pagemap.nr_pages())?;
        let backing = pagemap.data();
        let mut buf = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
        self.migrate_range(mm, range, MigrateSelect::System, |migration| {
            for i in 0..migration.npages() {
                let src = match migration.src(i) {
                    MigrateSrc::System(page) => Some(page),
                    MigrateSrc::Empty => None,
                    _ => continue,
                };
                let dpage = pagemap.alloc_page()?;
                let memory = Page::alloc_page(GFP_KERNEL | __GFP_ZERO)?;
                if let Some(src) = src {
                    // SAFETY: `buf` is valid for writing a page and does not overlap `src`.
                    unsafe { src.read_raw(buf.as_mut_ptr(), 0, PAGE_SIZE)? };
                    // SAFETY: `buf` is valid for reading a page and does not overlap `memory`.
                    unsafe { memory.write_raw(buf.as_ptr(), 0, PAGE_SIZE)? };
                }
                // The device page was free, so it has no memory yet.
                drop(backing.store(dpage.offset(), memory)?);
                migration.set_dst_device(i, dpage)?;
            }
            Ok(())
        })?;
        // Return what the device sees: pages that did not move (shared ones, for instance) fail
        // the call with `ENOENT`, as in `test_hmm`.
        self.access(mm, cmd, false, false)
    }

    /// `HMM_DMIRROR_MIGRATE_TO_SYS`.
    fn migrate_to_sys(&self, mm: &MmWithUser, cmd: &mut HmmDmirrorCmd) -> Result {
        let range = cmd_range(cmd, usize::MAX >> kernel::page::PAGE_SHIFT)?;
        let pagemap = &self.module.pagemap;
        let backing = pagemap.data();
        let mut buf = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
        cmd.cpages = 0;
        self.migrate_range(mm, range, MigrateSelect::DevicePrivate, |migration| {
            cmd.cpages += to_system(&backing, pagemap, migration, &mut buf)?;
            Ok(())
        })
    }
}

#[vtable]
impl MiscDevice for DmirrorFile {
    type Ptr = KBox<Self>;

    fn open(_file: &File, misc: &MiscDeviceRegistration<Self>) -> Result<KBox<Self>> {
        let misc = core::ptr::from_ref(misc).cast_mut();
        // SAFETY: The only registration of `DmirrorFile` is the `miscdev` field of the module.
        let module = unsafe { kernel::container_of!(misc, DmirrorModule, miscdev) };
        // SAFETY: The module outlives its open files, which hold a reference to it.
        let module = unsafe { &*module };
        Ok(KBox::new(Self { module }, GFP_KERNEL)?)
    }

    fn ioctl(me: &DmirrorFile, _file: &File, cmd: u32, arg: usize) -> Result<isize> {
        let (mut reader, mut writer) = UserSlice::new(
            UserPtr::from_addr(arg),
            core::mem::size_of::<HmmDmirrorCmd>(),
        )
        .reader_writer();
        let mut c: HmmDmirrorCmd = match cmd {
            HMM_DMIRROR_READ
            | HMM_DMIRROR_WRITE
            | HMM_DMIRROR_MIGRATE_TO_DEV
            | HMM_DMIRROR_MIGRATE_TO_SYS => reader.read()?,
            _ => return Err(ENOTTY),
        };
        let task = kernel::current!();
        let mm = task.mm().ok_or(EINVAL)?;
        match cmd {
            HMM_DMIRROR_READ => me.access(mm, &mut c, false, true)?,
            HMM_DMIRROR_WRITE => me.access(mm, &mut c, true, true)?,
            HMM_DMIRROR_MIGRATE_TO_DEV => me.migrate_to_dev(mm, &mut c)?,
            _ => me.migrate_to_sys(mm, &mut c)?,
        }
        writer.write(&c)?;
        Ok(0)
    }
}
