// Owns the files of a MemoryBench: criterion's estimates read back, each profile's report.json
// and memory.png, and the Markdown summary table. Must never run a routine nor time anything.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::format::{format_bytes, format_count, format_ms};
use crate::model::{Outcome, Verdict};
use crate::report::Report;

use super::FAIL_ON_LEAK_VAR;

/// Where criterion writes its results, found the way criterion finds it: `$CRITERION_HOME`,
/// `$CARGO_TARGET_DIR/criterion`, cargo's target directory, or `target/criterion`.
pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    let from_cargo = std::env::var_os("CARGO").and_then(|cargo| {
        let out = std::process::Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(PathBuf::from(v["target_directory"].as_str()?))
    });
    from_cargo
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("criterion")
}

/// Criterion's median estimate of a benchmark, read from its `new/estimates.json`.
pub fn criterion_median(dir: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

/// [`criterion_median`] of an estimate written at or after `since`.
pub(super) fn fresh_median(dir: &Path, since: std::time::SystemTime) -> Option<f64> {
    let modified = std::fs::metadata(dir.join("new/estimates.json"))
        .and_then(|m| m.modified())
        .ok()?;
    // Coarse file-system clocks: a second of slack.
    (modified + Duration::from_secs(1) >= since).then(|| criterion_median(dir))?
}

/// One line of the summary table.
#[derive(Debug, Clone)]
pub(super) struct Row {
    pub(super) name: String,
    /// Time per iteration: criterion's median, or the profile's median when not timed.
    pub(super) time_ms: Option<f64>,
    pub(super) bytes: Option<f64>,
    pub(super) allocations: Option<f64>,
    pub(super) peak: Option<f64>,
    pub(super) verdict: Verdict,
    /// The gating metrics that leak.
    pub(super) leaking: Vec<&'static str>,
    /// Why the profile did not complete, if it did not.
    pub(super) failure: Option<String>,
    /// How criterion timed it (the table's timing column).
    pub(super) timing: String,
    /// Files written for it (report.json, memory.png).
    pub(super) written: Vec<PathBuf>,
}

/// A failed profile beats a leak, which beats clean (as `profile`'s exit codes).
pub(super) fn outcome(rows: &[Row]) -> Outcome {
    if rows.iter().any(|r| r.failure.is_some()) {
        Outcome::WorkloadFailed
    } else if rows.iter().any(|r| !r.leaking.is_empty()) {
        Outcome::Leak
    } else {
        Outcome::Clean
    }
}

/// Write `report.json` and `memory.png` under `dir`: the files written, and the errors.
pub(super) fn write_memory(report: &Report, dir: &Path) -> (Vec<PathBuf>, Vec<crate::Error>) {
    let mut written = Vec::new();
    let mut errors = Vec::new();
    if let Err(source) = std::fs::create_dir_all(dir) {
        errors.push(crate::Error::Write {
            path: dir.to_path_buf(),
            source,
        });
        return (written, errors);
    }
    let json = dir.join("report.json");
    match report.write_json(&json) {
        Ok(()) => written.push(json),
        Err(e) => errors.push(e),
    }
    #[cfg(feature = "plot")]
    {
        let (pictures, failed) =
            crate::figure::write_plots_each(report, &dir.join("memory.png"), None, &[]);
        written.extend(pictures);
        errors.extend(failed);
    }
    (written, errors)
}

pub(super) fn summary(group: &str, rows: &[Row], fail_on_leak: bool) -> String {
    let mut out = format!(
        "## Memory beside time: {group}\n\n| benchmark | time / iteration | allocated / iteration | allocations / iteration | heap peak / call | verdict | timing |\n|---|---|---|---|---|---|---|\n"
    );
    for r in rows {
        let verdict = match (&r.failure, r.leaking.is_empty()) {
            (Some(_), _) => format!("{}, failed", r.verdict.word()),
            (None, false) => format!("leak ({})", r.leaking.join(", ")),
            (None, true) => r.verdict.word().to_string(),
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} |\n",
            r.name,
            r.time_ms.map_or("–".into(), format_ms),
            r.bytes.map_or("–".into(), format_bytes),
            r.allocations
                .map_or("–".into(), |a| format_count(a.round())),
            r.peak.map_or("–".into(), format_bytes),
            verdict,
            r.timing,
        ));
    }
    out.push('\n');
    let names = |pick: &dyn Fn(&Row) -> bool| {
        rows.iter()
            .filter(|r| pick(r))
            .map(|r| format!("`{}`", r.name))
            .collect::<Vec<_>>()
    };
    let failed = names(&|r| r.failure.is_some());
    let leaking = names(&|r| r.failure.is_none() && !r.leaking.is_empty());
    for r in rows {
        if let Some(f) = &r.failure {
            out.push_str(&format!("`{}` failed: {f}\n", r.name));
        }
    }
    if leaking.is_empty() && failed.is_empty() {
        out.push_str(&format!(
            "No leaks: {} of {} benchmarks clean{}.\n",
            rows.iter().filter(|r| r.verdict == Verdict::Clean).count(),
            rows.len(),
            match rows.iter().any(|r| r.verdict == Verdict::Inconclusive) {
                true => ", the others inconclusive",
                false => "",
            }
        ));
        return out;
    }
    if !leaking.is_empty() {
        out.push_str(&format!(
            "**{} of {} benchmarks leak**: {}. Criterion timed {} on capped calls or not at \
             all (timing column), so that it cannot fill the memory.\n",
            leaking.len(),
            rows.len(),
            leaking.join(", "),
            if leaking.len() == 1 { "it" } else { "them" }
        ));
    }
    out.push_str(&if fail_on_leak {
        format!("{FAIL_ON_LEAK_VAR} is set: the bench exits with a failure.\n")
    } else {
        format!(
            "`cargo bench` still exits 0: set {FAIL_ON_LEAK_VAR}=1 to make it exit 1 on a leak \
             (3 on a panic).\n"
        )
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, time_ms: Option<f64>, leaking: Vec<&'static str>) -> Row {
        Row {
            name: name.to_string(),
            time_ms,
            bytes: Some(1024.0),
            allocations: Some(1.0),
            peak: Some(64.0),
            verdict: if leaking.is_empty() {
                Verdict::Clean
            } else {
                Verdict::Leak
            },
            leaking,
            failure: None,
            timing: "criterion".to_string(),
            written: Vec::new(),
        }
    }

    #[test]
    fn the_summary_shows_short_times_in_ns_and_says_a_leak_exits_0() {
        let rows = vec![
            row("fast", Some(0.000_3), vec![]),
            row("slow", Some(1.5), vec![]),
            row("leaky", None, vec!["heap_bytes"]),
        ];
        let table = summary("g", &rows, false);
        assert!(table.contains("| `fast` | 300 ns |"), "{table}");
        assert!(table.contains("| `slow` | 1.5 ms |"), "{table}");
        assert!(table.contains("| `leaky` | – |"), "{table}");
        assert!(
            table.contains("| leak (heap_bytes) | criterion |"),
            "{table}"
        );
        assert!(
            table.contains("**1 of 3 benchmarks leak**: `leaky`"),
            "{table}"
        );
        assert!(
            table.contains("`cargo bench` still exits 0: set MEMCREEP_FAIL_ON_LEAK=1"),
            "{table}"
        );
        assert_eq!(outcome(&rows), Outcome::Leak);
        let set = summary("g", &rows, true);
        assert!(set.contains("MEMCREEP_FAIL_ON_LEAK is set"), "{set}");

        let clean = vec![row("fast", Some(0.000_3), vec![])];
        assert!(summary("g", &clean, false).contains("No leaks: 1 of 1 benchmarks clean."));
        assert_eq!(outcome(&clean), Outcome::Clean);
    }
}
