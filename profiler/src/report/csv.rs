// Owns the CSV form of a Report: one row per sample, boundary and interval samples alike (a
// sweep: one row per point). Must never reorder or drop samples; an unmeasured field is an
// empty cell, never 0.

use std::fmt::Write;

use super::Report;

const HEADER: &str = "workload,kind,iteration,elapsed_ms,heap_bytes,heap_blocks,heap_peak_bytes,\
allocated_bytes,allocations,rss_bytes,vsize_bytes,fds,threads,duration_ms,cpu_ms,rss_file_bytes";

/// Columns of a sweep's CSV: the point fields of the JSON.
const SWEEP_HEADER: &str = "workload,size,peak_bytes,retained_bytes,allocated_bytes,\
allocations,rss_peak_bytes,duration_ms,repetitions";

pub(super) fn render(report: &Report) -> Vec<u8> {
    if !report.runs.is_empty() && report.runs.iter().all(|r| r.sweep.is_some()) {
        return render_sweep(report);
    }
    let mut out = String::from(HEADER);
    out.push('\n');
    for run in &report.runs {
        let name = quote(&run.workload);
        for s in &run.samples {
            let _ = writeln!(
                out,
                "{name},boundary,{},{:.3},{},{},{},{},{},{},{},{},{},{},{},{}",
                s.iteration,
                s.elapsed_ms,
                cell(s.heap_bytes),
                cell(s.heap_blocks),
                cell(s.heap_peak_bytes),
                cell(s.allocated_bytes),
                cell(s.allocations),
                cell(s.rss_bytes),
                cell(s.vsize_bytes),
                cell(s.fds),
                cell(s.threads),
                cell(s.duration_ms.map(|v| format!("{v:.3}"))),
                cell(s.cpu_ms.map(|v| format!("{v:.3}"))),
                cell(s.rss_file_bytes),
            );
        }
        for s in &run.interval_samples {
            let _ = writeln!(
                out,
                "{name},interval,{},{:.3},{},,,,,{},,,,,,{}",
                s.iteration,
                s.elapsed_ms,
                cell(s.heap_bytes),
                cell(s.rss_bytes),
                cell(s.rss_file_bytes),
            );
        }
    }
    out.into_bytes()
}

/// A sweep (every run of `--sweep` is one): a row per size of each run.
fn render_sweep(report: &Report) -> Vec<u8> {
    let mut out = String::from(SWEEP_HEADER);
    out.push('\n');
    for run in &report.runs {
        let name = quote(&run.workload);
        for p in run.sweep.iter().flat_map(|s| &s.points) {
            let _ = writeln!(
                out,
                "{name},{},{},{},{},{},{},{:.3},{}",
                p.size,
                cell(p.peak_bytes),
                cell(p.retained_bytes),
                cell(p.allocated_bytes),
                cell(p.allocations),
                cell(p.rss_peak_bytes),
                p.duration_ms,
                p.repetitions
            );
        }
    }
    out.into_bytes()
}

fn cell<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// RFC 4180 quoting when the field needs it.
fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn header_and_rows_have_the_same_number_of_columns() {
        use crate::model::{HeapScope, IntervalSample, Run};
        let mut run = Run::new("w", HeapScope::Process);
        run.samples.push(crate::sample::Sample {
            rss_bytes: Some(8192),
            rss_file_bytes: Some(4096),
            ..Default::default()
        });
        run.interval_samples.push(IntervalSample {
            elapsed_ms: 1.0,
            iteration: 1,
            heap_bytes: Some(1),
            rss_bytes: Some(8192),
            rss_file_bytes: Some(4096),
        });
        let text = String::from_utf8(render(&Report::new(vec![run]))).unwrap();
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(',').collect()).collect();
        let header = &rows[0];
        assert_eq!(rows.len(), 3, "{text}");
        for row in &rows[1..] {
            assert_eq!(row.len(), header.len(), "{text}");
            // Every value under its own name.
            let at = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
            assert_eq!(at("rss_bytes"), "8192", "{text}");
            assert_eq!(at("rss_file_bytes"), "4096", "{text}");
        }
    }
}
