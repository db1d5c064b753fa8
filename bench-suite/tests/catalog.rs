//! Every catalog workload through the real engine, its verdict checked against what it was
//! written to show. One test function: heap, fd and thread counts are process-wide, and
//! libtest would otherwise run other tests' allocations beside it.
//!
//! `CATALOG_REPEATS` (default 3) sets how many times each workload runs; the 100-run check of
//! the clean catalog is `scripts/flake-check.sh`.

use profiler::options::Settings;
use profiler::{Expected, Verdict, session};

#[global_allocator]
static ALLOC: profiler::Alloc = profiler::Alloc::new();

#[test]
fn every_workload_gets_its_expected_verdict() {
    let repeats: usize = std::env::var("CATALOG_REPEATS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let settings = Settings::default(); // --iterations 20, extension and confirmation on
    let mut failures = Vec::new();
    let mut inconclusive = 0;
    let mut clean_runs = 0;
    for workload in bench_suite::catalog() {
        for round in 0..repeats {
            let run = session::run_workload(&workload, &settings, |_| {});
            assert!(run.failure.is_none(), "{}: {:?}", run.workload, run.failure);
            match workload.expected() {
                Expected::Clean => {
                    clean_runs += 1;
                    match run.verdict {
                        Verdict::Leak => failures.push(format!(
                            "{} (round {round}): false leak: {}",
                            run.workload,
                            reasons(&run)
                        )),
                        Verdict::Inconclusive => {
                            inconclusive += 1;
                            eprintln!("{} inconclusive: {}", run.workload, reasons(&run));
                        }
                        Verdict::Clean => {}
                    }
                }
                Expected::Leak(metrics) => {
                    for metric in metrics {
                        let got = run.metrics.get(metric).map(|m| m.verdict);
                        if got != Some(Verdict::Leak) {
                            failures.push(format!(
                                "{} (round {round}): {metric} is {got:?}, expected leak: {}",
                                run.workload,
                                reasons(&run)
                            ));
                        }
                    }
                    if run.verdict != Verdict::Leak {
                        failures.push(format!("{}: run verdict {:?}", run.workload, run.verdict));
                    }
                }
            }
        }
    }
    eprintln!(
        "clean runs: {clean_runs}, inconclusive: {inconclusive} ({:.1}%)",
        100.0 * inconclusive as f64 / clean_runs.max(1) as f64
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn reasons(run: &profiler::Run) -> String {
    run.metrics
        .iter()
        .filter(|(_, m)| m.verdict != Verdict::Clean)
        .map(|(k, m)| format!("{k}: {}", m.reason))
        .collect::<Vec<_>>()
        .join("; ")
}
