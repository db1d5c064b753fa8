// Owns the JSON form of a Report: writing it, and reading it back with validation.
// Must never accept a report of another tool or schema version, nor panic on any input.

use std::path::Path;

use super::{Report, SCHEMA_VERSION, TOOL_NAME};
use crate::error::Error;
use crate::model::HeapScope;

/// The report as pretty-printed JSON, ending with a newline. A non-finite number (which the
/// engine never produces, and which JSON cannot hold: serde_json would write `null` where a
/// reader expects a number) is refused rather than written.
pub(super) fn render(report: &Report) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    write(report, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// [`render`] straight into `to`, with no copy of the report in memory (no intermediate
/// `serde_json::Value`, no buffer of the whole text): a long run's report is tens of MiB.
pub(super) fn write(report: &Report, to: &mut impl std::io::Write) -> std::io::Result<()> {
    if let Some(at) = first_null_float(report) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{at} is not a finite number"),
        ));
    }
    serde_json::to_writer_pretty(&mut *to, report)?;
    to.write_all(b"\n")
}

/// Where a float that must be finite is not (samples' times; metric numbers may be absent).
fn first_null_float(report: &Report) -> Option<String> {
    for run in &report.runs {
        for s in &run.samples {
            let floats = [Some(s.elapsed_ms), s.duration_ms, s.cpu_ms];
            if floats.iter().flatten().any(|v| !v.is_finite()) {
                return Some(format!("run '{}' sample {}", run.workload, s.iteration));
            }
        }
        if run
            .interval_samples
            .iter()
            .any(|s| !s.elapsed_ms.is_finite())
        {
            return Some(format!("run '{}' interval samples", run.workload));
        }
        for (metric, m) in &run.metrics {
            let [lo, hi] = m.ci.map_or([None, None], |[lo, hi]| [Some(lo), Some(hi)]);
            let floats = [
                Some(m.after_warmup),
                Some(m.end),
                Some(m.growth),
                m.slope_per_iteration,
                m.slope_per_second,
                m.p_value,
                lo,
                hi,
            ];
            if floats.iter().flatten().any(|v| !v.is_finite()) {
                return Some(format!("run '{}' metric {metric}", run.workload));
            }
        }
        for c in run.baseline.iter().flat_map(|b| &b.changes) {
            if ![c.old, c.new, c.allowed].iter().all(|v| v.is_finite()) {
                return Some(format!(
                    "run '{}' baseline {}",
                    run.workload,
                    c.metric.name()
                ));
            }
        }
    }
    None
}

/// Read and validate a report file.
pub(super) fn read(path: &Path) -> Result<Report, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&bytes).map_err(|reason| Error::InvalidReport {
        path: path.to_path_buf(),
        reason,
    })
}

/// Validate bytes as a report: JSON, our tool, our schema version, sane numbers.
pub(crate) fn parse(bytes: &[u8]) -> Result<Report, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty".into());
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_eof() {
            format!("the JSON ends early (truncated?) at line {}", e.line())
        } else {
            format!("not JSON ({e})")
        }
    })?;
    let tool = value
        .pointer("/tool/name")
        .and_then(|v| v.as_str())
        .ok_or("it has no tool.name: not a report of this profiler")?;
    if tool != TOOL_NAME {
        return Err(format!("it was written by '{tool}', not by {TOOL_NAME}"));
    }
    let version = match value.get("schema_version") {
        None => return Err("it has no schema_version".into()),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| format!("its schema_version {v} is not a whole number"))?,
    };
    if version != u64::from(SCHEMA_VERSION) {
        return Err(format!(
            "schema_version {version} is not supported (this version reads {SCHEMA_VERSION})"
        ));
    }
    let report: Report =
        serde_json::from_value(value).map_err(|e| format!("unexpected content ({e})"))?;
    check_numbers(&report)?;
    Ok(report)
}

/// Negative sizes or times cannot come from a measurement: refuse them. In thread scope the
/// heap is counted from the thread's start, so a thread that freed what existed before the
/// run may peak below it.
fn check_numbers(report: &Report) -> Result<(), String> {
    for run in &report.runs {
        let peak_from_start = run.heap_scope == HeapScope::Thread;
        for s in &run.samples {
            let peak = s.heap_peak_bytes.filter(|_| !peak_from_start);
            let negative = [peak, s.allocated_bytes, s.allocations]
                .into_iter()
                .flatten()
                .any(|v| v < 0)
                || [s.duration_ms, s.cpu_ms]
                    .into_iter()
                    .flatten()
                    .any(|v| v < 0.0 || !v.is_finite())
                || !s.elapsed_ms.is_finite()
                || s.elapsed_ms < 0.0;
            if negative {
                return Err(format!(
                    "run '{}' sample {} holds a negative or non-finite size or time",
                    run.workload, s.iteration
                ));
            }
        }
        if run.samples.len() > run.iterations as usize + 1 {
            return Err(format!(
                "run '{}' has {} samples for {} iterations",
                run.workload,
                run.samples.len(),
                run.iterations
            ));
        }
    }
    Ok(())
}
