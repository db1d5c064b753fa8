// Owns the cells of the `--sweep` table and its fit lines, shared by the text and Markdown
// outputs, so both word a sweep alike. Must never fit: the points and fits are read as they are.

use crate::format::{format_bytes, format_count, format_ms};
use crate::model::{Run, SWEEP_FIELDS, Sweep};

/// Column titles of the points table.
pub(super) const HEADER: [&str; 8] = [
    "n",
    "peak",
    "retained",
    "allocated",
    "allocations",
    "RSS peak",
    "time",
    "repetitions",
];

/// One row of cells per size of `run`, if it ran with `--sweep`.
pub(super) fn rows(run: &Run) -> Option<(&Sweep, Vec<[String; 8]>)> {
    let s = run.sweep.as_ref()?;
    let dash = || "-".to_string();
    let bytes = |v: Option<f64>| v.map_or_else(dash, format_bytes);
    let rows = s
        .points
        .iter()
        .map(|p| {
            [
                crate::sizes::short(p.size),
                bytes(p.peak_bytes.map(|v| v as f64)),
                bytes(p.retained_bytes.map(|v| v as f64)),
                bytes(p.allocated_bytes.map(|v| v as f64)),
                p.allocations.map_or_else(dash, |v| format_count(v as f64)),
                bytes(p.rss_peak_bytes.map(|v| v as f64)),
                format_ms(p.duration_ms),
                p.repetitions.to_string(),
            ]
        })
        .collect();
    Some((s, rows))
}

/// One line per fitted field, in table order: "peak_bytes: ≈ 48 B × n + 2.1 KiB, O(n)
/// (R² 0.999)" or "duration_ms: cannot tell ...", gated fields marked.
pub(super) fn fit_lines(s: &Sweep) -> Vec<String> {
    SWEEP_FIELDS
        .iter()
        .filter_map(|&field| {
            let fit = s.fits.get(field)?;
            let gate = match s.max_complexity {
                Some(max) if s.gated.iter().any(|g| g == field) => format!(" [held to {max}]"),
                _ => String::new(),
            };
            Some(format!("{field}: {}{gate}", fit.sentence))
        })
        .collect()
}
