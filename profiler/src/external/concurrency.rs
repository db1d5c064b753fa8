// Owns K copies of a program at once (`--concurrency` with `-- COMMAND`): started together,
// each sampled by its own engine run; a copy that exits non-zero on its own is a failed
// iteration of the level, one the profiler stops is not. Must never print.

use std::time::Instant;

use super::{ExternalError, Program};
use crate::engine::concurrency::{CopyRun, Whole, level_of};
use crate::model::{FailureKind, HeapScope, Level, PerCopy, Run};

/// Run `programs` (one per copy, `{copy}` already replaced) at once and make their level.
pub fn run_level(programs: Vec<Program>) -> Result<(Level, Vec<Run>), ExternalError> {
    let copies = programs.len() as u32;
    let started = Instant::now();
    let results: Vec<Result<Run, ExternalError>> = std::thread::scope(|s| {
        let handles: Vec<_> = programs
            .into_iter()
            .map(|p| s.spawn(move || p.run()))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(ExternalError::EmptyCommand)))
            .collect()
    });
    let wall = started.elapsed();
    let mut runs = Vec::new();
    for r in results {
        runs.push(r?);
    }
    let per_copy = if runs.iter().all(|r| r.heap_scope == HeapScope::Program) {
        PerCopy::Heap
    } else {
        PerCopy::Rss
    };
    let whole = Whole {
        wall,
        // Each copy at its peak within each sample's window, as its own peak is read: the
        // whole of one copy is that copy's peak (live bytes at the samples alone read less).
        heap_peak_bytes: (per_copy == PerCopy::Heap).then(|| {
            peak_of_sum(
                &runs,
                |s| s.heap_peak_bytes.max(s.heap_bytes).map(|h| h.max(0) as u64),
                false,
            )
        }),
        rss_peak_bytes: Some(peak_of_sum(&runs, |s| s.rss_bytes, true)),
        cpu_ms: runs
            .iter()
            .map(|r| r.samples.iter().filter_map(|s| s.cpu_ms).sum::<f64>())
            .reduce(|a, b| a + b),
    };
    let copies_runs = runs
        .into_iter()
        .enumerate()
        .map(|(i, mut run)| {
            run.workload = format!("{} (copy {i} of {copies})", run.workload);
            // Exited non-zero on its own: a failed iteration of the level, not of the session.
            let failed = match run.failure.take_if(|f| f.kind == FailureKind::Program) {
                Some(f) => {
                    run.source
                        .notes
                        .push(format!("a failed iteration of the level: {}", f.sentence()));
                    // Judged on what it measured, as a copy the profiler stopped would be.
                    run.verdict = crate::judge::run_verdict(&run.metrics);
                    true
                }
                None => false,
            };
            CopyRun {
                run,
                failures: u64::from(failed),
                setup_bytes: 0,
                span: None,
            }
        })
        .collect();
    Ok(level_of(copies, copies_runs, whole, per_copy))
}

/// The highest sum over copies of one quantity, each copy holding its last value between its
/// samples (copies start together, so their clocks agree to a few milliseconds). With peaks
/// of sample windows it is an upper bound: the copies need not peak at the same moment.
fn peak_of_sum(
    runs: &[Run],
    value: impl Fn(&crate::sample::Sample) -> Option<u64>,
    between: bool,
) -> u64 {
    let mut events: Vec<(f64, usize, u64)> = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        events.extend(
            run.samples
                .iter()
                .filter_map(|s| value(s).map(|v| (s.elapsed_ms, i, v))),
        );
        if between {
            events.extend(
                run.interval_samples
                    .iter()
                    .filter_map(|s| s.rss_bytes.map(|v| (s.elapsed_ms, i, v))),
            );
        }
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut current = vec![0u64; runs.len()];
    let mut peak = 0;
    for (_, i, v) in events {
        current[i] = v;
        peak = peak.max(current.iter().sum());
    }
    peak
}
