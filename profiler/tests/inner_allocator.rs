//! `profiler::Alloc` over another allocator (mimalloc, as services run on): the same exact
//! counts as over the system allocator, every call served by the inner allocator, and
//! attribution through dhat refused with a sentence instead of mixing allocators. A plain
//! `main` (harness = false), as heap_counts.rs, for process-wide counts.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

mod exact;

/// mimalloc, counting the calls it serves (to show they all reach it).
struct Served(mimalloc::MiMalloc);

static SERVED: AtomicU64 = AtomicU64::new(0);
/// Allocations and reallocations to more bytes than this fail (to test failures).
static FAIL_ABOVE: AtomicUsize = AtomicUsize::new(usize::MAX);

fn fails(size: usize) -> bool {
    size > FAIL_ABOVE.load(Relaxed)
}

// SAFETY: forwards every call unchanged to mimalloc; the count is a relaxed add.
unsafe impl GlobalAlloc for Served {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if fails(layout.size()) {
            return std::ptr::null_mut();
        }
        SERVED.fetch_add(1, Relaxed);
        unsafe { self.0.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        SERVED.fetch_add(1, Relaxed);
        unsafe { self.0.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { self.0.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if fails(new_size) {
            return std::ptr::null_mut();
        }
        SERVED.fetch_add(1, Relaxed);
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: profiler::Alloc<Served> = profiler::Alloc::wrapping(Served(mimalloc::MiMalloc));

fn every_call_reaches_the_inner_allocator() {
    let before = profiler::alloc::heap().unwrap();
    let served = SERVED.load(Relaxed);
    let v: Vec<Box<u64>> = (0..1000).map(Box::new).collect();
    let after = profiler::alloc::heap().unwrap();
    assert_eq!(after.allocations - before.allocations, 1001);
    assert_eq!(SERVED.load(Relaxed) - served, 1001);
    drop(v);
}

/// Sampled attribution needs nothing of the inner allocator: it names the leaking line.
fn sampled_attribution_works_over_it() {
    let line = line!() + 1;
    let leak = || Box::leak(Box::new([0u8; 1024])).len();
    let attribute = || {
        profiler::Profiler::new("leak")
            .attribute(profiler::Attribute::Always)
            .run(leak)
    };
    // A steady leak's samples fail the test of their spread over the window (binomial, at 1%)
    // about 0.6% of the time, and no site is named: a leak with no site is run once more.
    let mut report = attribute();
    let run = &report.runs[0];
    if run.verdict == profiler::Verdict::Leak && run.leak_sites.is_empty() {
        report = attribute();
    }
    let run = &report.runs[0];
    assert_eq!(run.verdict, profiler::Verdict::Leak);
    let info = run.attribution.as_ref().expect("attribution ran");
    assert_eq!(info.method, "sampled");
    let first = run.leak_sites.first().expect("a site");
    assert!(
        first
            .location
            .ends_with(&format!("inner_allocator.rs:{line}")),
        "{first:?}"
    );
}

/// The exact mode routes through dhat, which allocates from the system allocator: refused.
fn exact_attribution_is_refused_with_a_sentence() {
    assert!(!profiler::alloc::can_route_to_dhat());
    let report = profiler::Profiler::new("leak")
        .attribute(profiler::Attribute::Exact)
        .attribute_file(std::env::temp_dir().join("inner-allocator-dhat.json"))
        .run(|| Box::leak(Box::new([0u8; 64])).len());
    let run = &report.runs[0];
    let note = run.attribution_note.as_deref().unwrap_or_default();
    assert!(note.contains("system allocator"), "{note}");
    assert!(run.leak_sites.is_empty());
    assert_eq!(
        run.verdict,
        profiler::Verdict::Leak,
        "the counting still works"
    );
}

/// A failed `realloc` of a sampled block leaves it the caller's and still sampled (on the
/// table, freed as one later), and its counts as they were; a failed large allocation is not
/// counted. (A failed allocation on the fast path, smaller than a check's reach, stays
/// counted: it is counted before the inner allocator is called, which only fails one when
/// the process is out of memory.)
fn failed_calls_leave_the_counts_and_the_table_as_they_were() {
    use profiler::alloc::{heap, sampled};
    // Every block of 96 KiB is sampled at a 1 KiB interval.
    sampled::set_interval(Some(1024));
    let mut v: Vec<u8> = Vec::with_capacity(96 << 10);
    sampled::set_interval(None);
    let live = sampled::live_count();
    assert!(live >= 1, "the block was sampled");
    FAIL_ABOVE.store(128 << 10, Relaxed);
    let before = heap().unwrap();
    assert!(v.try_reserve_exact(256 << 10).is_err(), "realloc fails");
    let beyond_a_check = 2 * profiler::alloc::CHECK_EVERY as usize;
    assert!(
        Vec::<u8>::new().try_reserve_exact(beyond_a_check).is_err(),
        "alloc fails"
    );
    let after = heap().unwrap();
    FAIL_ABOVE.store(usize::MAX, Relaxed);
    assert_eq!(after, before, "failed calls are not counted");
    assert_eq!(
        sampled::live_count(),
        live,
        "the block is still on the table"
    );
    v.push(1);
    drop(v);
    assert_eq!(
        sampled::live_count(),
        live - 1,
        "and freed as a sampled block"
    );
}

fn main() {
    exact::heap_counts_are_exact();
    every_call_reaches_the_inner_allocator();
    sampled_attribution_works_over_it();
    exact_attribution_is_refused_with_a_sentence();
    failed_calls_leave_the_counts_and_the_table_as_they_were();
    println!("inner_allocator: ok");
}
