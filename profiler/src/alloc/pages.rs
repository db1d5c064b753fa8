// Owns the pages sampled blocks live in: the toolkit's own mappings, never the inner
// allocator's heap. Must only be called on the allocator's cold path, inside the sampler guard.

//! Memory for small sampled blocks.
//!
//! A free must tell a sampled block from any other with one cheap test on the fast path, and
//! a sampled block must not disturb the inner allocator's heap. So a sampled block of up to a
//! page takes a page of its own from one range of address space reserved for them ([`SPAN`]
//! bytes, inaccessible until used, so it costs neither memory nor commit charge), and a free
//! recognises one by its address alone: [`contains`] is a subtraction and a compare, and no
//! block of the inner allocator ever passes it. (Recognising them by page alignment instead
//! sent about 1 in 170 of the system allocator's small frees to the table to miss there:
//! measured, 3% of the mixed loop's time with sampling on.) Asking the inner allocator for
//! page alignment would also split its heap: on the catalog that made RSS step by 128 KiB
//! where the workload alone stays flat.
//!
//! Pages are made accessible [`REGION`] at a time from the start of the range; the pages of
//! freed samples are reused. [`reserve`] makes [`RESERVE`] free pages resident before a run's
//! first sample, so that RSS does not step while the run keeps no more small samples live at
//! once than that. Larger sampled blocks stay where the inner allocator puts them (a free of
//! more than a page always looks at the table). None of it is in the heap counters (the block
//! itself is counted at its requested size, as any other).

/// A page: the alignment of every sampled block.
pub const PAGE: usize = 4096;
/// Pages made accessible at once when the free list is empty.
pub const REGION: usize = 64;
/// Free pages made resident before a run's first sample.
pub const RESERVE: usize = 256;
/// Bytes of address space reserved for small sampled blocks: a page each, so this many / 4 KiB
/// of them live at once (a million on 64-bit targets; past that, small allocations due for a
/// sample are left unsampled).
#[cfg(target_pointer_width = "64")]
pub const SPAN: usize = 1 << 32;
#[cfg(not(target_pointer_width = "64"))]
pub const SPAN: usize = 1 << 26;

use std::sync::atomic::AtomicUsize;
#[cfg(unix)]
use std::sync::atomic::Ordering::Relaxed;

/// Start of the reserved range (unix); until it is reserved, an address no user pointer has (the top
/// of the address space belongs to the kernel), so that [`contains`] is always false.
static BASE: AtomicUsize = AtomicUsize::new(usize::MAX - SPAN + 1);

/// Whether `ptr` may be a small sampled block: in the range of them, the free's test on the
/// fast path. The base was stored before any block could be in it, so a relaxed load of it
/// sees it.
#[cfg(unix)]
#[inline(always)]
pub(super) fn contains(ptr: *mut u8) -> bool {
    (ptr as usize).wrapping_sub(BASE.load(Relaxed)) < SPAN
}

/// Whether `ptr` may be a small sampled block: without pages of our own they are the inner
/// allocator's, page-aligned (see `sampled`).
#[cfg(not(unix))]
#[inline(always)]
pub(super) fn contains(ptr: *mut u8) -> bool {
    ptr as usize & (PAGE - 1) == 0
}

#[cfg(unix)]
mod imp {
    use super::{BASE, PAGE, REGION, SPAN};
    use std::ptr;
    use std::sync::Mutex;
    use std::sync::atomic::Ordering::Relaxed;

    /// The range's pages: free ones (addresses), how many from its start are accessible, and
    /// how many it has (0 until it is reserved).
    struct Pages {
        free: Vec<usize>,
        used: usize,
        len: usize,
        /// Reserving the range failed: no pages, ever.
        failed: bool,
    }

    static PAGES: Mutex<Pages> = Mutex::new(Pages {
        free: Vec::new(),
        used: 0,
        len: 0,
        failed: false,
    });

    impl Pages {
        /// Make the next [`REGION`] pages of the range accessible and free; `false` when the
        /// range cannot be had or is used up.
        fn grow(&mut self) -> bool {
            if self.len == 0 && !self.failed && !self.reserve_range() {
                self.failed = true;
            }
            if self.failed || self.used + REGION > self.len {
                return false;
            }
            let start = BASE.load(Relaxed) + self.used * PAGE;
            // SAFETY: pages of our own reserved range, not in use.
            let rc = unsafe {
                libc::mprotect(
                    start as *mut libc::c_void,
                    REGION * PAGE,
                    libc::PROT_READ | libc::PROT_WRITE,
                )
            };
            if rc != 0 {
                return false;
            }
            self.used += REGION;
            // Handed out lowest first.
            self.free
                .extend((0..REGION).rev().map(|i| start + i * PAGE));
            true
        }

        /// Reserve the range: [`SPAN`] bytes, or less where address space is limited
        /// (`ulimit -v`). Blocks of others may then lie in the rest of the span
        /// [`contains`](super::contains) tests: their frees look at the table and miss it,
        /// slower only.
        fn reserve_range(&mut self) -> bool {
            let mut len = SPAN;
            while len >= 16 * REGION * PAGE {
                // SAFETY: an anonymous private mapping, inaccessible; no file, no fixed address.
                let p = unsafe {
                    libc::mmap(
                        ptr::null_mut(),
                        len,
                        libc::PROT_NONE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                        -1,
                        0,
                    )
                };
                if p != libc::MAP_FAILED {
                    BASE.store(p as usize, Relaxed);
                    self.len = len / PAGE;
                    return true;
                }
                len /= 4;
            }
            false
        }
    }

    fn pages() -> std::sync::MutexGuard<'static, Pages> {
        PAGES.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn reserve(count: usize) {
        let mut pages = pages();
        while pages.free.len() < count {
            let before = pages.free.len();
            if !pages.grow() {
                return;
            }
            for &page in &pages.free[before..] {
                // SAFETY: an accessible page of ours, free: touch it so that it is resident.
                unsafe { ptr::write_volatile(page as *mut u8, 0) };
            }
        }
    }

    pub fn take(size: usize, zeroed: bool) -> *mut u8 {
        if size > PAGE {
            return ptr::null_mut();
        }
        let mut pages = pages();
        if pages.free.is_empty() && !pages.grow() {
            return ptr::null_mut();
        }
        let Some(page) = pages.free.pop() else {
            return ptr::null_mut();
        };
        let p = page as *mut u8;
        if zeroed {
            // SAFETY: the page is ours and at least `size` bytes long.
            unsafe { ptr::write_bytes(p, 0, size) };
        }
        p
    }

    /// # Safety
    /// `p` came from `take(size, _)` and is not used again.
    pub unsafe fn give_back(p: *mut u8) {
        pages().free.push(p as usize);
    }
}

#[cfg(not(unix))]
mod imp {
    //! Without mmap, no pages of our own: small sampled blocks come from the inner allocator,
    //! page-aligned (see `sampled`).
    pub fn reserve(_pages: usize) {}

    pub fn take(_size: usize, _zeroed: bool) -> *mut u8 {
        std::ptr::null_mut()
    }

    pub unsafe fn give_back(_p: *mut u8) {}
}

/// Make at least `pages` free pages resident for small sampled blocks (before a run's first
/// sample: see the module's doc). Inside the sampler guard only (`sampled::reserve`).
pub(super) fn reserve(pages: usize) {
    imp::reserve(pages)
}

/// A page for a sampled block of `size` bytes (zeroed if asked), or null when `size` is
/// above a page or no page can be had.
pub(super) fn take(size: usize, zeroed: bool) -> *mut u8 {
    imp::take(size, zeroed)
}

/// Give back the page of a small sampled block.
///
/// # Safety
/// `p` came from [`take`] and is not used again.
pub(super) unsafe fn give_back(p: *mut u8) {
    unsafe { imp::give_back(p) }
}
