//! `MemoryBench::bench_sizes` on a routine that keeps a copy of its input per call: criterion
//! must time it on capped calls (or not at all), as `bench` does a leaking routine. It timed it
//! in full, and one keeping its 100k-element input per call took a process to 3.1 GiB.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use criterion::Criterion;
use profiler::bench::MemoryBench;

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

fn main() {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: set before any other thread runs.
    unsafe { std::env::set_var("CRITERION_HOME", dir.path()) };
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(10))
        .measurement_time(Duration::from_millis(50))
        .sample_size(10)
        .without_plots();
    let kept: Rc<RefCell<Vec<Vec<u64>>>> = Rc::default();
    let mut memory = MemoryBench::new("sizes").leak_budget(1 << 20);
    memory.bench_sizes(&mut c, "keep", &[1_000, 10_000, 100_000], |n| {
        let input: Vec<u64> = (0..n).collect();
        let kept = Rc::clone(&kept);
        move || kept.borrow_mut().push(input.clone())
    });
    memory.finish();
    let bytes: usize = kept.borrow().iter().map(|v| v.len() * 8).sum();
    // The sweep's own calls keep ~20 MiB at most; criterion's, capped at 1 MiB per size.
    assert!(
        bytes < 64 << 20,
        "criterion's calls were not capped: {} MiB kept",
        bytes >> 20
    );
    let summary = std::fs::read_to_string(dir.path().join("sizes/memory-summary.md")).unwrap();
    assert!(summary.contains("capped at"), "{summary}");
    println!(
        "bench_sizes capped a routine keeping memory: {} MiB kept",
        bytes >> 20
    );
}
