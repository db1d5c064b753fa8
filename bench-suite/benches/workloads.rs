//! `cargo bench`: every catalog workload timed by criterion, with its bytes and allocations
//! per iteration (custom criterion measurements) and its memory profile (report.json and
//! memory.png in target/criterion/workloads/<workload>/memory/), then a summary table.

use std::time::Duration;

use criterion::Criterion;
use profiler::bench::MemoryBench;
use profiler::{Expected, Metric};

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
        // Criterion runs a routine thousands of times: one that leaks a thread or a
        // descriptor per call would exhaust the process. Those get the memory profile only.
        let exhausts = match workload.expected() {
            Expected::Leak(metrics) => metrics
                .iter()
                .any(|m| matches!(m, Metric::Fds | Metric::Threads)),
            Expected::Clean => false,
        };
        if exhausts {
            memory.profile_only(
                workload.name(),
                &mut routine,
                "leaks fds or threads per call",
            );
        } else {
            memory.bench(&mut c, workload.name(), &mut routine);
        }
    }
    memory.finish();
    c.final_summary();
}
