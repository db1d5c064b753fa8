//! Exact heap counting through `profiler::Alloc`. A plain `main` (harness = false) on purpose:
//! the counters are process-wide, and libtest's own threads would run beside the checks.
//! (The panic printed on stderr is the one the panicking-workload check catches.)

mod exact;

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

/// `harness = false` (see profiler/Cargo.toml): no libtest threads run beside the check, so
/// process-wide counts see nothing but it.
/// A run's own bookkeeping nets out once its report is dropped: its store of samples, made
/// untracked, used to be freed counted (one block of 256 B off the heap per run).
fn a_run_leaves_the_heap_as_it_found_it() {
    let profile = || {
        let report = profiler::Profiler::new("quiet")
            .iterations(5)
            .extend(false)
            .run(|| std::hint::black_box(vec![0u8; 100]).len());
        drop(report);
    };
    profile(); // what the first run makes once
    let before = profiler::alloc::heap().expect("profiler::Alloc is installed");
    for _ in 0..3 {
        profile();
    }
    let after = profiler::alloc::heap().unwrap();
    assert_eq!(
        (after.live_blocks, after.live_bytes),
        (before.live_blocks, before.live_bytes),
        "three runs, their reports dropped"
    );
}

fn main() {
    exact::heap_counts_are_exact();
    a_run_leaves_the_heap_as_it_found_it();
    println!("heap_counts: ok");
}
