//! The allocator comparison's floor: a global allocator that forwards every call to System and
//! does nothing else. Whatever a counting allocator costs beyond this binary is its counting;
//! what this one costs over System (no `#[global_allocator]`) is the wrapper's own call path.

use std::alloc::{GlobalAlloc, Layout, System};

struct Forward;

// SAFETY: every call goes to System with the caller's arguments.
unsafe impl GlobalAlloc for Forward {
    #[inline(always)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    #[inline(always)]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc_zeroed(layout) }
    }

    #[inline(always)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    #[inline(always)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Forward = Forward;

fn main() {
    bench_suite::alloc_loop::run("forward");
}
