//! Memory that does not go through `profiler::Alloc`: a C library called through FFI
//! allocates with libc's malloc, which the heap counters never see. A leak there read "heap
//! clean, RSS warning, passed"; RSS growing by more than the whole counted heap now fails.

use profiler::{Metric, Profiler, Verdict};

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

unsafe extern "C" {
    fn malloc(size: usize) -> *mut u8;
    fn free(ptr: *mut u8);
}

/// `bytes` from libc's malloc, every page written (so that they are in RSS).
fn c_block(bytes: usize) -> *mut u8 {
    // SAFETY: a fresh block of `bytes`, written within its bounds.
    unsafe {
        let p = malloc(bytes);
        assert!(!p.is_null());
        for at in (0..bytes).step_by(4096) {
            p.add(at).write_volatile(1);
        }
        p
    }
}

#[test]
fn a_leak_in_c_code_called_through_ffi_fails() {
    let report = Profiler::new("ffi-leak").run(|| {
        c_block(256 * 1024);
    });
    let rss = &report.runs[0].metrics[&Metric::RssBytes];
    assert_eq!(rss.verdict, Verdict::Leak, "{}", rss.reason);
    assert!(rss.gating, "{}", rss.reason);
    assert!(
        rss.reason.contains("outside profiler::Alloc"),
        "{}",
        rss.reason
    );
    assert_eq!(report.runs[0].verdict, Verdict::Leak);
}

#[test]
fn c_memory_freed_each_call_is_clean() {
    let report = Profiler::new("ffi-churn").run(|| {
        // SAFETY: the block c_block made, freed once.
        unsafe { free(c_block(256 * 1024)) };
    });
    assert_ne!(report.runs[0].verdict, Verdict::Leak);
    report.assert_no_leaks();
}
