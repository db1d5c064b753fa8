// Owns the cells of the `--concurrency` table, shared by the text and Markdown outputs, so
// both word the levels alike. Must never decide anything: the levels are read as they are.

use crate::format::{format_bytes, format_ms};
use crate::model::{Concurrency, Run};

/// Column titles of the levels table.
pub(super) const HEADER: [&str; 11] = [
    "copies",
    "iterations",
    "failures",
    "throughput",
    "p50",
    "p95",
    "max",
    "heap peak",
    "RSS peak",
    "peak per copy",
    "verdict",
];

/// One row of cells per level of `run`, if it ran with `--concurrency`.
pub(super) fn rows(run: &Run) -> Option<(&Concurrency, Vec<[String; 11]>)> {
    let c = run.concurrency.as_ref()?;
    let dash = || "-".to_string();
    let ms = |v: Option<f64>| v.map_or_else(dash, format_ms);
    let bytes = |v: Option<u64>| v.map_or_else(dash, |b| format_bytes(b as f64));
    let rows = c
        .levels
        .iter()
        .map(|l| {
            [
                l.copies.to_string(),
                l.iterations.to_string(),
                if l.failures == 0 {
                    "0".into()
                } else {
                    format!("{} ({:.1}%)", l.failures, l.failure_rate_pct())
                },
                l.throughput_per_s
                    .map_or_else(dash, |t| format!("{t:.1}/s")),
                ms(l.p50_ms),
                ms(l.p95_ms),
                ms(l.max_ms),
                bytes(l.heap_peak_bytes),
                bytes(l.rss_peak_bytes),
                format!("{} ({})", bytes(l.peak_per_copy_bytes), l.per_copy.word()),
                l.verdict.word().to_string(),
            ]
        })
        .collect();
    Some((c, rows))
}
