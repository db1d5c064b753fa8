// Owns the route through dhat during attribution passes. Must never be taken over an inner
// allocator other than the system one (dhat allocates from it).

//! The cold path during attribution passes. Calls from the profiler's own untracked work
//! and from dhat's bookkeeping (which allocates through the global allocator while we
//! call into dhat) go straight to the system allocator and are not counted; the
//! workload's calls are counted exactly as on the fast path, then recorded by dhat.

use super::{LOCAL, count_alloc, count_free, spans, untracked};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::Ordering::Relaxed;

static DHAT: dhat::Alloc = dhat::Alloc;

fn is_untracked() -> bool {
    LOCAL.try_with(|l| l.untracked.get() != 0).unwrap_or(true)
}

pub(super) unsafe fn alloc(layout: Layout, zeroed: bool) -> *mut u8 {
    if is_untracked() {
        return unsafe {
            if zeroed {
                System.alloc_zeroed(layout)
            } else {
                System.alloc(layout)
            }
        };
    }
    let p = untracked(|| unsafe {
        if zeroed {
            DHAT.alloc_zeroed(layout)
        } else {
            DHAT.alloc(layout)
        }
    });
    if !p.is_null() {
        count_alloc(layout.size(), None);
        if spans::SPANS_ON.load(Relaxed) {
            spans::on_alloc(p, layout.size());
        }
    }
    p
}

pub(super) unsafe fn dealloc(ptr: *mut u8, layout: Layout) {
    if is_untracked() {
        return unsafe { System.dealloc(ptr, layout) };
    }
    // Off its span before dhat frees it: another thread may be given the address next.
    if spans::SPANS_ON.load(Relaxed) {
        spans::on_free(ptr);
    }
    untracked(|| unsafe { DHAT.dealloc(ptr, layout) });
    count_free(layout.size());
}

pub(super) unsafe fn realloc(ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
    if is_untracked() {
        return unsafe { System.realloc(ptr, layout, new_size) };
    }
    let p = spans::around_realloc(ptr, layout.size(), new_size, || {
        untracked(|| unsafe { DHAT.realloc(ptr, layout, new_size) })
    });
    if !p.is_null() {
        count_alloc(new_size, Some(layout.size()));
    }
    p
}
