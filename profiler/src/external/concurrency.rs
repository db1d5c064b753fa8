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
    let since = super::tree::now();
    let started = Instant::now();
    let results: Vec<Result<Run, ExternalError>> = std::thread::scope(|s| {
        let handles: Vec<_> = programs
            .into_iter()
            .map(|p| s.spawn(move || p.beside_others().run()))
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
    // What the copies' trees left running (a daemon's double fork): only now that every copy
    // has ended can it be told from a copy, and not from which copy it came.
    let mut left = since.map(super::child::orphans_since).unwrap_or_default();
    left.sort_unstable();
    if let (Some(&first), Some(run)) = (left.first(), runs.first_mut()) {
        let named: Vec<String> = (left.iter().take(3))
            .map(|&pid| super::source::named(&(pid, super::tree::name(pid))))
            .collect();
        run.source.notes.push(format!(
            "the copies left running what they started: {}{}; these samples are the copies' \
             alone. If the program daemonizes, run it in the foreground, or sample that \
             process with --pid {first}",
            named.join(", "),
            if left.len() > 3 { ", ..." } else { "" }
        ));
    }
    let per_copy = if runs.iter().all(|r| r.heap_scope == HeapScope::Program) {
        PerCopy::Heap
    } else {
        PerCopy::Rss
    };
    let whole = Whole {
        wall,
        heap_peak_bytes: (per_copy == PerCopy::Heap).then(|| heap_peak_of_sum(&runs)),
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
                own: None,
            }
        })
        .collect();
    Ok(level_of(copies, copies_runs, whole, per_copy))
}

/// An upper bound of the copies' summed heap peak: each copy holds, over each of its sample
/// windows, its peak within that window (from the sample before to this one), and the highest
/// sum over time of what the copies hold is taken. The whole of one copy is that copy's peak
/// (live bytes at the samples alone read less); copies that peak in overlapping windows add
/// up, whenever within the windows they peaked.
fn heap_peak_of_sum(runs: &[Run]) -> u64 {
    let mut events: Vec<(f64, usize, u64)> = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let mut window_start = 0.0;
        for s in &run.samples {
            if let Some(v) = s.heap_peak_bytes.max(s.heap_bytes) {
                events.push((window_start, i, v.max(0) as u64));
            }
            window_start = s.elapsed_ms;
        }
    }
    highest_sum(events, runs.len())
}

/// The highest sum over copies of one quantity, each copy holding its last value between its
/// samples (copies start together, so their clocks agree to a few milliseconds).
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
    highest_sum(events, runs.len())
}

/// The highest sum of `copies` values over time, each copy's value set by its events (time,
/// copy, value) until its next one.
fn highest_sum(mut events: Vec<(f64, usize, u64)>, copies: usize) -> u64 {
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut current = vec![0u64; copies];
    let mut peak = 0;
    for (_, i, v) in events {
        current[i] = v;
        peak = peak.max(current.iter().sum());
    }
    peak
}
