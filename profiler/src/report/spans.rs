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
                [
                    s.name.clone(),
                    format_bytes(s.allocated_bytes as f64),
                    format_count(s.allocations as f64),
                    format_bytes(s.retained_bytes as f64),
                    format_bytes(s.peak_bytes as f64),
                    format_count(s.entries as f64),
                ]
            })
            .collect(),
    )
}
