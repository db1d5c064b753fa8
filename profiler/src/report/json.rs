// Owns the JSON form of a Report: writing it, and reading it back with validation.
// Must never accept a report of another tool or schema version, nor panic on any input.

use std::path::Path;

use super::{Report, SCHEMA_VERSION, TOOL_NAME};
use crate::error::Error;

/// The report as pretty-printed JSON, ending with a newline.
pub(super) fn render(report: &Report) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(report).unwrap_or_else(|e| {
        // Only non-finite floats can fail here; they are never produced by the engine.
        format!("{{\"error\": \"report not serialisable: {e}\"}}").into_bytes()
    });
    out.push(b'\n');
    out
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
    let version = value
        .get("schema_version")
        .and_then(|v| v.as_u64())
        .ok_or("it has no schema_version")?;
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

/// Negative sizes or times cannot come from a measurement: refuse them.
fn check_numbers(report: &Report) -> Result<(), String> {
    for run in &report.runs {
        for s in &run.samples {
            let negative = [s.heap_peak_bytes, s.allocated_bytes, s.allocations]
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
