//! `cargo bench`: every catalog workload's memory profile first (report.json and memory.png in
//! target/criterion/workloads/<workload>/memory/), then its time by criterion as far as the
//! memory verdict allows (fully when clean; on capped calls when the heap leaks; not at all
//! when it leaks descriptors or threads), with its bytes and allocations per iteration, then a
//! summary table. Then the sized workloads against their input size: a sweep from a tenth to
//! ten times their default size (memory against n, fitted, in
//! target/criterion/sizes/<workload>/memory/) and criterion's time at each size.
//! `MEMCREEP_FAIL_ON_LEAK=1 cargo bench` exits 1, as the catalog has leaks.

use std::time::Duration;

use criterion::Criterion;
use profiler::bench::MemoryBench;

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
        .without_plots()
        .configure_from_args();
    let mut memory = MemoryBench::new("workloads");
    for workload in bench_suite::catalog() {
        let mut routine = match workload.setup() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{}: setup failed: {e}", workload.name());
                continue;
            }
        };
        // The memory profile decides how far criterion may time it: no list of workloads
        // that must not be timed is needed here.
        memory.bench(&mut c, workload.name(), &mut routine);
    }
    let mut by_size = MemoryBench::new("sizes");
    for workload in bench_suite::catalog() {
        let Some(default) = workload.default_size() else {
            continue;
        };
        let limit = workload.size_limit().unwrap_or(u64::MAX);
        let sizes: Vec<u64> =
            profiler::sizes::parse(&format!("{}..{}", default / 10, default * 10))
                .unwrap_or_default()
                .into_iter()
                .filter(|&n| n <= limit)
                .collect();
        by_size.bench_sizes(&mut c, workload.name(), &sizes, |n| {
            workload
                .setup_at(n)
                .and_then(Result::ok)
                .unwrap_or_else(|| Box::new(|| {}))
        });
    }
    c.final_summary();
    by_size.finish();
    // Last: with MEMCREEP_FAIL_ON_LEAK=1 it exits the process when a workload leaks.
    memory.finish();
}
