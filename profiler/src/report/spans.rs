// Owns the cells of the heap-per-span table (`SpanMemory`), shared by the text and Markdown
// outputs, so both word the spans alike. Must never decide anything: the records are read as
// they are.

use crate::format::{format_bytes, format_count};
use crate::model::Run;

/// Column titles of the spans table.
pub(super) const HEADER: [&str; 6] = [
    "span",
    "allocated",
    "allocations",
    "retained",
    "peak",
    "entries",
];

/// One row per span name of `run`, most retained first, if `SpanMemory` was installed.
/// Estimates (sampled spans) read `~`, the retained bytes with their 95% bounds.
pub(super) fn rows(run: &Run) -> Option<Vec<[String; 6]>> {
    if run.spans.is_empty() {
        return None;
    }
    let mut spans: Vec<_> = run.spans.iter().collect();
    spans.sort_by(|a, b| {
        b.retained_bytes
            .cmp(&a.retained_bytes)
            .then(b.allocated_bytes.cmp(&a.allocated_bytes))
    });
    Some(
        spans
            .into_iter()
            .map(|s| {
                let est = if s.sampled.is_some() { "~" } else { "" };
                let bytes = |b: i64| format!("{est}{}", format_bytes(b as f64));
                let retained = match &s.sampled {
                    Some(sampled) => {
                        let [lo, hi] = sampled.retained_bytes_ci;
                        let bound = |b: i64| format_bytes(b as f64);
                        format!("{} ({}..{})", bytes(s.retained_bytes), bound(lo), bound(hi))
                    }
                    None => bytes(s.retained_bytes),
                };
                [
                    s.name.clone(),
                    bytes(s.allocated_bytes),
                    format!("{est}{}", format_count(s.allocations as f64)),
                    retained,
                    bytes(s.peak_bytes),
                    format_count(s.entries as f64),
                ]
            })
            .collect(),
    )
}

/// The line under the table of a run whose spans were sampled: what the estimates are.
pub(super) fn note(run: &Run) -> Option<String> {
    let sampled = run.spans.iter().find_map(|s| s.sampled.as_ref())?;
    Some(format!(
        "sampled, one allocation per {} allocated on average: ~ marks estimates, retained \
         with its 95% bounds; entries are exact",
        format_bytes(sampled.interval_bytes as f64)
    ))
}
