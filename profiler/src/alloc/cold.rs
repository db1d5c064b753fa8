// Owns the allocator's cold path: calls of a thread whose fast pointer is COLD, counted
// (and charged to spans) here. Must never be on the fast path, nor count untracked work.

//! Calls of a thread whose `fast` pointer is `COLD` (the route to dhat, untracked work, a
//! thread's first allocation, an exited thread, spans counted), an allocation that reaches
//! the thread's next sample or its next check of the peak, and a free of a pointer that may
//! be a sampled block.

use super::{FOREIGN_INNER, ROUTE_TO_DHAT, count_alloc, count_free, dhat_route, sampled, spans};
use std::alloc::{GlobalAlloc, Layout, System};
use std::any::TypeId;
use std::sync::atomic::{Ordering::*, fence};

/// Record once that the inner allocator is not the system one (every thread's first call
/// comes here): attribution through dhat, which allocates from the system allocator, must
/// then never be switched on.
fn note_inner<A: 'static>() {
    if TypeId::of::<A>() != TypeId::of::<System>() && !FOREIGN_INNER.load(Relaxed) {
        FOREIGN_INNER.store(true, Relaxed);
    }
}

/// Whether calls go to dhat. The fence pairs with `route_to_dhat`'s SeqCst store of `COLD`
/// into our `fast` pointer: having read that, we see the flag it was stored after.
fn routed() -> bool {
    fence(Acquire);
    ROUTE_TO_DHAT.load(Relaxed)
}

#[cold]
#[inline(never)]
pub(super) unsafe fn alloc<A: GlobalAlloc + 'static>(
    inner: &A,
    layout: Layout,
    zeroed: bool,
) -> *mut u8 {
    note_inner::<A>();
    if routed() {
        return unsafe { dhat_route::alloc(layout, zeroed) };
    }
    if sampled::take_sample(layout.size()) {
        return unsafe { sampled::alloc(inner, layout, zeroed) };
    }
    unsafe { sampled::plain_alloc(inner, layout, zeroed) }
}

#[cold]
#[inline(never)]
pub(super) unsafe fn dealloc<A: GlobalAlloc + 'static>(inner: &A, ptr: *mut u8, layout: Layout) {
    note_inner::<A>();
    // First: a sampled block is freed with the layout it was made with, whatever the route.
    if sampled::candidate(ptr) && unsafe { sampled::dealloc(inner, ptr, layout) } {
        return;
    }
    if routed() {
        return unsafe { dhat_route::dealloc(ptr, layout) };
    }
    count_free(layout.size());
    if spans::SPANS_ON.load(Relaxed) {
        spans::on_free(ptr);
    }
    unsafe { inner.dealloc(ptr, layout) }
}

#[cold]
#[inline(never)]
pub(super) unsafe fn realloc<A: GlobalAlloc + 'static>(
    inner: &A,
    ptr: *mut u8,
    layout: Layout,
    new_size: usize,
) -> *mut u8 {
    note_inner::<A>();
    let routed_now = routed();
    if !routed_now || sampled::candidate(ptr) {
        // SAFETY: the caller's arguments, as GlobalAlloc::realloc has them.
        if let Some(p) = unsafe { sampled::realloc(inner, ptr, layout, new_size, !routed_now) } {
            return p;
        }
    }
    if routed() {
        return unsafe { dhat_route::realloc(ptr, layout, new_size) };
    }
    let p = spans::around_realloc(ptr, layout.size(), new_size, || unsafe {
        inner.realloc(ptr, layout, new_size)
    });
    if !p.is_null() {
        count_alloc(new_size, Some(layout.size()));
    }
    p
}
