// Owns the pages sampled blocks live in: the toolkit's own mappings, never the inner
// allocator's heap. Must only be called on the allocator's cold path, inside the sampler guard.

//! Memory for small sampled blocks.
//!
//! A sampled block must be page-aligned (that is how a free recognises one, see `sampled`).
//! Asking the inner allocator for page alignment for a small block splits its heap around
//! it: on the catalog that made RSS step by 128 KiB where the workload alone stays flat, and
//! turned RSS verdicts inconclusive. So a sampled block of up to a page takes a page of its
//! own instead, from a free list of pages mapped [`REGION`] at a time; the pages of freed
//! samples are reused. [`reserve`] makes [`RESERVE`] free pages resident before a run's first
//! sample, so that RSS does not step while the run keeps no more small samples live at once
//! than that. Larger
//! sampled blocks stay where the inner allocator puts them (a free of more than a page always
//! looks at the table). None of it is in the heap counters (the block itself is counted at
//! its requested size, as any other).

/// A page: the alignment of every sampled block.
pub const PAGE: usize = 4096;
/// Pages mapped at once when the free list is empty.
pub const REGION: usize = 64;
/// Free pages made resident before a run's first sample.
pub const RESERVE: usize = 256;

#[cfg(unix)]
mod imp {
    use super::{PAGE, REGION};
    use std::ptr;
    use std::sync::Mutex;

    /// Single pages free for a sampled block (addresses).
    static FREE: Mutex<Vec<usize>> = Mutex::new(Vec::new());

    fn map(len: usize) -> *mut u8 {
        // SAFETY: an anonymous private mapping; no file, no fixed address.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            ptr::null_mut()
        } else {
            p as *mut u8
        }
    }

    pub fn reserve(pages: usize) {
        let mut free = FREE.lock().unwrap_or_else(|e| e.into_inner());
        while free.len() < pages {
            let region = map(REGION * PAGE);
            if region.is_null() {
                return;
            }
            for i in 0..REGION {
                let page = region as usize + i * PAGE;
                // SAFETY: our fresh mapping: touch each page so that it is resident now.
                unsafe { ptr::write_volatile(page as *mut u8, 0) };
                free.push(page);
            }
        }
    }

    pub fn take(size: usize, zeroed: bool) -> *mut u8 {
        if size > PAGE {
            return ptr::null_mut();
        }
        let mut free = FREE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(page) = free.pop() {
            let p = page as *mut u8;
            if zeroed {
                // SAFETY: the page is ours and at least `size` bytes long.
                unsafe { ptr::write_bytes(p, 0, size) };
            }
            return p;
        }
        let region = map(REGION * PAGE);
        if region.is_null() {
            return region;
        }
        free.extend((1..REGION).map(|i| region as usize + i * PAGE));
        region
    }

    /// # Safety
    /// `p` came from `take(size, _)` and is not used again.
    pub unsafe fn give_back(p: *mut u8) {
        FREE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(p as usize);
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
