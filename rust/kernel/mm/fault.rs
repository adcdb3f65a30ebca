// SPDX-License-Identifier: GPL-2.0

//! Page fault handling.
//!
//! C header: [`include/linux/mm.h`](srctree/include/linux/mm.h)

use crate::{
    bindings,
    error::{
        code::ENOMEM,
        Result, //
    },
    mm::virt::VmaRef,
    types::Opaque, //
};

/// A page fault that is being handled, `struct vm_fault`.
///
/// The kernel passes a `struct vm_fault` to the fault handlers of a VMA or of a page, for example
/// to the `migrate_to_ram` callback of a device-private pagemap.
///
/// # Invariants
///
/// The `vm_fault` is valid and describes a fault that is being handled. Its `vma` is valid, and
/// the mmap read lock or the vma read lock of that `vma` is held for as long as the reference to
/// the `VmFault` exists.
///
/// # Examples
///
/// ```
/// use kernel::mm::fault::VmFault;
///
/// /// Returns the offset of the faulting page in its VMA, in pages.
/// fn page_in_vma(fault: &VmFault) -> usize {
///     (fault.address() - fault.vma().start()) >> kernel::page::PAGE_SHIFT
/// }
/// # let _ = page_in_vma;
/// ```
#[repr(transparent)]
pub struct VmFault(Opaque<bindings::vm_fault>);

impl VmFault {
    /// Accesses a fault given a raw pointer.
    ///
    /// # Safety
    ///
    /// Callers must ensure that `vmf` describes a fault that is being handled and is valid for the
    /// duration of `'a`, and that the mmap read lock or the vma read lock of `vmf->vma` is held
    /// for at least the duration of `'a`.
    #[inline]
    pub unsafe fn from_raw<'a>(vmf: *mut bindings::vm_fault) -> &'a Self {
        // SAFETY: `VmFault` is a transparent wrapper around `struct vm_fault`, and the caller
        // guarantees that the pointer is valid for `'a`.
        unsafe { &*vmf.cast() }
    }

    /// Returns a raw pointer to the `struct vm_fault`.
    #[inline]
    pub fn as_ptr(&self) -> *mut bindings::vm_fault {
        self.0.get()
    }

    /// Returns the faulting virtual address (not aligned to a page).
    #[inline]
    pub fn real_address(&self) -> usize {
        // SAFETY: By the type invariants the `vm_fault` is valid. The field is not modified
        // while the fault is handled.
        unsafe { (*self.as_ptr()).__bindgen_anon_1.real_address }
    }

    /// Returns the faulting virtual address, aligned down to the page.
    #[inline]
    pub fn address(&self) -> usize {
        // SAFETY: By the type invariants the `vm_fault` is valid. The field is not modified
        // while the fault is handled.
        unsafe { (*self.as_ptr()).__bindgen_anon_1.address }
    }

    /// Returns the VMA of the fault.
    #[inline]
    pub fn vma(&self) -> &VmaRef {
        // SAFETY: By the type invariants the `vm_fault` and its `vma` are valid, and the mmap or
        // vma read lock is held for as long as `self` is borrowed.
        unsafe { VmaRef::from_raw((*self.as_ptr()).__bindgen_anon_1.vma) }
    }

    /// Returns the page set by the caller of the fault handler, or null.
    ///
    /// For a fault on a device-private entry this is the device-private page.
    #[cfg(CONFIG_DEVICE_PRIVATE)]
    #[inline]
    pub(crate) fn page_ptr(&self) -> *mut bindings::page {
        // SAFETY: By the type invariants the `vm_fault` is valid.
        unsafe { (*self.as_ptr()).page }
    }
}

/// Converts the result of a fault handler to the `vm_fault_t` the kernel expects.
///
/// `Ok(())` becomes 0 (the fault was handled), [`ENOMEM`] becomes `VM_FAULT_OOM` and every other
/// error `VM_FAULT_SIGBUS`.
///
/// # Examples
///
/// ```
/// use kernel::{bindings, mm::fault::to_vm_fault_t, prelude::*};
///
/// assert_eq!(to_vm_fault_t(Ok(())), 0);
/// assert_eq!(to_vm_fault_t(Err(ENOMEM)), bindings::vm_fault_reason_VM_FAULT_OOM);
/// assert_eq!(to_vm_fault_t(Err(EFAULT)), bindings::vm_fault_reason_VM_FAULT_SIGBUS);
/// ```
pub fn to_vm_fault_t(result: Result) -> bindings::vm_fault_t {
    match result {
        Ok(()) => 0,
        Err(e) if e == ENOMEM => bindings::vm_fault_reason_VM_FAULT_OOM,
        Err(_) => bindings::vm_fault_reason_VM_FAULT_SIGBUS,
    }
}
