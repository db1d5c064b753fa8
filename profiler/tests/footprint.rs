//! The profiler's own footprint. Its own test binary: the heap counts are process-wide.

use profiler::{Metric, Profiler, Verdict};

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

/// The profiler's own footprint: a run of 140,000 iterations keeps at most
/// MAX_STORED_SAMPLES boundary samples (merged, evenly spaced), and the workload's heap
/// never sees the profiler's allocations.
fn a_long_run_is_bounded_in_memory() {
    let report = Profiler::new("long")
        .iterations(140_000)
        .extend(false)
        .run(|| {});
    let run = &report.runs[0];
    assert_eq!(run.iterations, 140_000);
    assert!(run.samples.len() <= profiler::store::MAX_STORED_SAMPLES + 2);
    let bytes = run.samples.len() * std::mem::size_of::<profiler::Sample>();
    assert!(bytes <= 64 << 20, "{bytes} B of samples");
    let span = run.samples[1].span;
    assert_eq!(span, 4, "140,000 / 65,536 rounded up to a power of two");
    assert_eq!(run.samples.last().unwrap().iteration, 140_000);
    let first = run.samples[0].heap_bytes;
    let moved: Vec<(u32, Option<i64>)> = run
        .samples
        .iter()
        .filter(|s| s.heap_bytes != first)
        .map(|s| (s.iteration, s.heap_bytes))
        .take(5)
        .collect();
    assert!(
        moved.is_empty(),
        "heap growth must be exactly 0: {first:?} then {moved:?}"
    );
    assert_eq!(run.metrics[&Metric::HeapBytes].verdict, Verdict::Clean);
}

/// `harness = false` (see profiler/Cargo.toml): no libtest threads run beside the check, so
/// process-wide counts see nothing but it.
fn main() {
    a_long_run_is_bounded_in_memory();
    println!("footprint: ok");
}
