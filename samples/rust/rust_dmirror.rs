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
        memremap::{
            DevPagemap,
            DevPagemapOps,
            DevicePage,
            DevicePrivateFault,
            DevicePrivateRegion, //
        },
        migrate::{
            DstPage,
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
        PAGE_MASK,
        PAGE_SHIFT,
        PAGE_SIZE, //
    },
    prelude::*,
    sync::SpinLock,
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

/// The device: its simulated memory, one buffer per device page in use, by offset.
///
/// The buffers are `kmalloc()` memory, which `folio_free` may free in atomic context.
#[pin_data]
struct Dmirror {
    #[pin]
    memory: SpinLock<KVVec<Option<KVec<u8>>>>,
}

impl Dmirror {
    fn new(nr_pages: usize) -> Result<impl PinInit<Self, Error>> {
        let mut memory = KVVec::with_capacity(nr_pages, GFP_KERNEL)?;
        for _ in 0..nr_pages {
            memory.push_within_capacity(None).map_err(|_| ENOMEM)?;
        }
        Ok(try_pin_init!(Self {
            memory <- new_spinlock!(memory),
        }? Error))
    }

    /// Sets the memory of device page `offset`; returns the memory it replaces.
    fn store(&self, offset: usize, page: KVec<u8>) -> Result<Option<KVec<u8>>> {
        let mut memory = self.memory.lock();
        let slot = memory.get_mut(offset).ok_or(EINVAL)?;
        Ok(slot.replace(page))
    }

    /// Removes the memory of device page `offset`.
    fn take(&self, offset: usize) -> Option<KVec<u8>> {
        self.memory.lock().get_mut(offset).and_then(Option::take)
    }

    /// Copies the memory of device page `offset` to `buf` (one page).
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result {
        let memory = self.memory.lock();
        let page = memory.get(offset).and_then(Option::as_ref).ok_or(EIO)?;
        buf.copy_from_slice(page.get(..buf.len()).ok_or(EINVAL)?);
        Ok(())
    }

    /// Copies `buf` (one page) to the memory of device page `offset`.
    fn write(&self, offset: usize, buf: &[u8]) -> Result {
        let mut memory = self.memory.lock();
        let page = memory.get_mut(offset).and_then(Option::as_mut).ok_or(EIO)?;
        page.get_mut(..buf.len())
            .ok_or(EINVAL)?
            .copy_from_slice(buf);
        Ok(())
    }

    /// Copies the memory of device page `offset` to the system memory page `dst`.
    fn copy_to(&self, offset: usize, dst: &mut DstPage<'_>) -> Result {
        let memory = self.memory.lock();
        dst.fill(memory.get(offset).and_then(Option::as_ref).ok_or(EIO)?)
    }
}

#[vtable]
impl DevPagemapOps for Dmirror {
    fn folio_free(pagemap: &DevPagemap<Self>, page: &DevicePage) {
        // Free the device memory outside of the lock.
        drop(pagemap.data().take(page.offset()));
    }

    fn migrate_to_ram(fault: &DevicePrivateFault<'_, Self>) -> Result {
        let mut migration = MigrateVma::for_fault(fault)?;
        to_system(fault.pagemap(), &mut migration)?;
        migration.migrate();
        Ok(())
    }

    fn copy_to_ram(pagemap: &DevPagemap<Self>, page: &DevicePage, dst: &mut DstPage<'_>) -> Result {
        pagemap.data().copy_to(page.offset(), dst)
    }
}

/// Sets system memory destinations, with the content of device memory, for the device pages
/// collected by `migration`. Returns how many.
fn to_system(pagemap: &DevPagemap<Dmirror>, migration: &mut MigrateVma<'_>) -> Result<u64> {
    let mut count = 0;
    for i in 0..migration.npages() {
        let offset = match migration.src(i) {
            MigrateSrc::DevicePrivate(page) if pagemap.owns(page) => page.offset(),
            _ => continue,
        };
        migration.set_dst_system(i, |dst| pagemap.data().copy_to(offset, dst))?;
        count += 1;
    }
    Ok(count)
}

/// The module, owning the device memory and the misc device.
///
/// The misc device is declared first so that it is deregistered before the pagemap is dropped,
/// which migrates the pages still on the device back to system memory.
#[pin_data]
struct DmirrorModule {
    #[pin]
    miscdev: MiscDeviceRegistration<DmirrorFile>,
    #[pin]
    pagemap: DevPagemap<Dmirror>,
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
                    region.start() >> PAGE_SHIFT,
                    (region.start() + region.size()) >> PAGE_SHIFT,
                    region.nr_pages()
                );
                let device = Dmirror::new(region.nr_pages())?;
                DevPagemap::new(region, device)
            },
            miscdev <- MiscDeviceRegistration::register(options),
        }? Error)
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
        let (start, end) = cmd_range(cmd, usize::MAX >> PAGE_SHIFT)?;
        let ptr = usize::try_from(cmd.ptr).map_err(|_| EINVAL)?;
        // The user buffer must not wrap around either.
        ptr.checked_add(end - start).ok_or(EINVAL)?;
        let pagemap = &self.module.pagemap;
        let device = pagemap.data();
        let mut buf = KVVec::from_elem(0u8, CHUNK_PAGES * PAGE_SIZE, GFP_KERNEL)?;
        cmd.cpages = 0;
        cmd.faults = 0;

        let mut chunk = start;
        while chunk < end {
            // `chunk < end`, so neither sum can overflow.
            let len = min(end - chunk, CHUNK_PAGES * PAGE_SIZE);
            let chunk_end = chunk + len;
            let user = ptr + (chunk - start);
            if write {
                UserSlice::new(UserPtr::from_addr(user), len)
                    .reader()
                    .read_slice(&mut buf[..len])?;
            }

            // Pages on the device: access device memory. To find them, collect them for a
            // migration back to system memory that is then aborted. This is a stopgap for a
            // page-table walker, which the Rust API does not have yet: a real driver knows what
            // it mapped (`test_hmm` keeps a mirror page table of its own).
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
                        &guard,
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
                            device.write(page.offset(), data)?;
                        } else {
                            device.read(page.offset(), data)?;
                        }
                        on_device[index] = true;
                    }
                    // Nothing migrates: dropping the migration puts every page back.
                    drop(migration);
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
    /// sets their destinations, and the step is migrated. An error aborts the step it happens
    /// in and leaves the steps before it migrated.
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
            // `addr < end`, so the sum cannot overflow.
            let step_end = min(vma.end(), addr + min(end - addr, CHUNK_PAGES * PAGE_SIZE));
            let mut migration =
                MigrateVma::setup(&guard, addr, step_end, select, &self.module.pagemap)?;
            step(&mut migration)?;
            migration.migrate();
            addr = step_end;
        }
        Ok(())
    }

    /// `HMM_DMIRROR_MIGRATE_TO_DEV`.
    fn migrate_to_dev(&self, mm: &MmWithUser, cmd: &mut HmmDmirrorCmd) -> Result {
        let pagemap = &self.module.pagemap;
        // A range larger than the device cannot fit.
        let range = cmd_range(cmd, pagemap.nr_pages())?;
        let device = pagemap.data();
        self.migrate_range(mm, range, MigrateSelect::System, |migration| {
            for i in 0..migration.npages() {
                let system = match migration.src(i) {
                    MigrateSrc::System(_) => true,
                    // Never touched: the device page reads as zeroes.
                    MigrateSrc::Empty => false,
                    _ => continue,
                };
                let mut memory = KVec::from_elem(0u8, PAGE_SIZE, GFP_KERNEL)?;
                if system {
                    migration.read_src(i, &mut memory)?;
                }
                let dpage = pagemap.alloc_page()?;
                // The device page was free, so it has no memory yet.
                drop(device.store(dpage.offset(), memory)?);
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
        let range = cmd_range(cmd, usize::MAX >> PAGE_SHIFT)?;
        let pagemap = &self.module.pagemap;
        cmd.cpages = 0;
        self.migrate_range(mm, range, MigrateSelect::DevicePrivate, |migration| {
            cmd.cpages += to_system(pagemap, migration)?;
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
