// Owns comparing a Report with a saved one: per workload, per metric, with tolerances.
// Must never run anything nor change verdicts: it adds a comparison beside them.

//! Baselines: a report saved with `--save-baseline` is compared with a new one per workload.
//!
//! Compared, each with a tolerance (default 10% relative, with an absolute floor so a tiny
//! number does not flap): `peak` (heap peak above the run's start), `allocated` and
//! `allocations` (median per iteration), `retained` (live heap at the end above the start;
//! only when both runs did the same number of iterations), `rss` (peak RSS), `fds` and
//! `threads` (at the end). A regression is a value above old + allowed, an improvement one
//! below old - allowed, where allowed = max(relative x |old|, absolute floor).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::report::{Report, Run, format_value};
use crate::sample::Metric;
use crate::verdict::format_bytes;

/// What a baseline comparison looks at (the names `--tolerance` takes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compared {
    Peak,
    Allocated,
    Allocations,
    Retained,
    Rss,
    Fds,
    Threads,
}

impl Compared {
    pub const ALL: [Compared; 7] = [
        Compared::Peak,
        Compared::Allocated,
        Compared::Allocations,
        Compared::Retained,
        Compared::Rss,
        Compared::Fds,
        Compared::Threads,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Compared::Peak => "peak",
            Compared::Allocated => "allocated",
            Compared::Allocations => "allocations",
            Compared::Retained => "retained",
            Compared::Rss => "rss",
            Compared::Fds => "fds",
            Compared::Threads => "threads",
        }
    }

    /// What it measures, in a few words.
    pub fn describe(self) -> &'static str {
        match self {
            Compared::Peak => "heap peak",
            Compared::Allocated => "bytes allocated per iteration",
            Compared::Allocations => "allocations per iteration",
            Compared::Retained => "heap retained at the end",
            Compared::Rss => "peak RSS",
            Compared::Fds => "open fds at the end",
            Compared::Threads => "threads at the end",
        }
    }

    fn is_bytes(self) -> bool {
        matches!(
            self,
            Compared::Peak | Compared::Allocated | Compared::Retained | Compared::Rss
        )
    }

    /// Format a value of this quantity for people.
    pub fn format(self, v: f64) -> String {
        if self.is_bytes() {
            format_bytes(v)
        } else {
            format_value(Metric::Fds, v.round())
        }
    }

    fn default_tolerance(self) -> Tolerance {
        let absolute = match self {
            Compared::Peak | Compared::Allocated | Compared::Retained => 4096.0,
            Compared::Allocations => 8.0,
            Compared::Rss => 2.0 * 1024.0 * 1024.0,
            Compared::Fds | Compared::Threads => 0.0,
        };
        Tolerance {
            relative: 0.10,
            absolute,
        }
    }
}

impl std::str::FromStr for Compared {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Compared::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Compared::ALL.iter().map(|c| c.name()).collect();
                format!("unknown metric '{s}' (one of: {})", names.join(", "))
            })
    }
}

/// How far a value may move before it counts as a change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Fraction of the old value (0.10 = 10%).
    pub relative: f64,
    /// Floor in the metric's unit (bytes or a count).
    pub absolute: f64,
}

/// Tolerances per compared quantity; defaults unless overridden.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tolerances {
    overrides: BTreeMap<Compared, Tolerance>,
}

impl Tolerances {
    pub fn get(&self, c: Compared) -> Tolerance {
        self.overrides
            .get(&c)
            .copied()
            .unwrap_or_else(|| c.default_tolerance())
    }

    /// Apply `NAME=PCT%` (relative) or `NAME=AMOUNT` (absolute floor: a size for byte
    /// quantities, a number for counts), as given to `--tolerance`.
    pub fn apply(&mut self, spec: &str) -> Result<(), String> {
        let (name, value) = spec
            .split_once('=')
            .ok_or_else(|| format!("'{spec}' is not NAME=VALUE (e.g. allocated=5%)"))?;
        let c: Compared = name.trim().parse()?;
        let mut t = self.get(c);
        let value = value.trim();
        if let Some(pct) = value.strip_suffix('%') {
            let p: f64 = pct
                .trim()
                .parse()
                .ok()
                .filter(|p: &f64| p.is_finite() && *p >= 0.0)
                .ok_or_else(|| format!("'{value}' in '{spec}' is not a percentage"))?;
            t.relative = p / 100.0;
        } else if c.is_bytes() {
            t.absolute =
                crate::budget::parse_size(value).map_err(|e| format!("in '{spec}': {e}"))? as f64;
        } else {
            t.absolute = value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| format!("'{value}' in '{spec}' is not a count or a percentage"))?;
        }
        self.overrides.insert(c, t);
        Ok(())
    }
}

/// Direction of a change beyond tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Regression,
    Improvement,
    Same,
}

/// One quantity, then and now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub metric: Compared,
    pub old: f64,
    pub new: f64,
    /// How far `new` could move from `old` without counting.
    pub allowed: f64,
    pub status: Status,
}

impl Change {
    /// "bytes allocated per iteration 1.0 KiB -> 1.2 KiB (+20.0%, allowed ±10%)".
    pub fn sentence(&self) -> String {
        let pct = if self.old != 0.0 {
            format!("{:+.1}%", 100.0 * (self.new - self.old) / self.old.abs())
        } else {
            format!("{:+}", self.metric.format(self.new - self.old))
        };
        format!(
            "{} {} -> {} ({pct}, allowed ±{})",
            self.metric.describe(),
            self.metric.format(self.old),
            self.metric.format(self.new),
            self.metric.format(self.allowed)
        )
    }
}

/// A run compared with the same workload in the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub baseline_iterations: u32,
    pub changes: Vec<Change>,
}

impl Comparison {
    pub fn regressions(&self) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .filter(|c| c.status == Status::Regression)
    }

    pub fn improvements(&self) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .filter(|c| c.status == Status::Improvement)
    }
}

/// Which baseline a report was compared with, and the workloads on one side only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineInfo {
    pub path: String,
    /// Workloads in the baseline that this report did not run.
    pub missing: Vec<String>,
    /// Workloads this report ran that the baseline does not have.
    pub new: Vec<String>,
}

/// The value of a compared quantity in a run, if it was measured.
pub fn measure(run: &Run, c: Compared) -> Option<f64> {
    let first = run.samples.first()?;
    let last = run.samples.last()?;
    match c {
        Compared::Peak => run.peak_above_start(),
        Compared::Allocated => run.allocated_per_iteration(),
        Compared::Allocations => run.allocations_per_iteration(),
        Compared::Retained => Some((last.heap_bytes? - first.heap_bytes?) as f64),
        Compared::Rss => run
            .samples
            .iter()
            .filter_map(|s| s.rss_bytes)
            .max()
            .map(|r| r as f64),
        Compared::Fds => last.fds.map(|v| v as f64),
        Compared::Threads => last.threads.map(|v| v as f64),
    }
}

/// Compare one run with its baseline run.
pub fn compare_run(run: &Run, base: &Run, tolerances: &Tolerances) -> Comparison {
    let changes = Compared::ALL
        .into_iter()
        .filter(|&c| c != Compared::Retained || run.iterations == base.iterations)
        .filter_map(|c| {
            let (old, new) = (measure(base, c)?, measure(run, c)?);
            let t = tolerances.get(c);
            let allowed = (t.relative * old.abs()).max(t.absolute);
            let status = if new > old + allowed {
                Status::Regression
            } else if new < old - allowed {
                Status::Improvement
            } else {
                Status::Same
            };
            Some(Change {
                metric: c,
                old,
                new,
                allowed,
                status,
            })
        })
        .collect();
    Comparison {
        baseline_iterations: base.iterations,
        changes,
    }
}

/// Compare every run of `report` with the same workload in `baseline`, recording the results
/// in the report (runs[].baseline and report.baseline).
pub fn compare(report: &mut Report, baseline: &Report, path: &str, tolerances: &Tolerances) {
    for run in &mut report.runs {
        run.baseline = baseline
            .runs
            .iter()
            .find(|b| b.workload == run.workload)
            .filter(|_| run.failure.is_none())
            .map(|b| compare_run(run, b, tolerances));
    }
    let missing = baseline
        .runs
        .iter()
        .filter(|b| !report.runs.iter().any(|r| r.workload == b.workload))
        .map(|b| b.workload.clone())
        .collect();
    let new = report
        .runs
        .iter()
        .filter(|r| !baseline.runs.iter().any(|b| b.workload == r.workload))
        .map(|r| r.workload.clone())
        .collect();
    report.baseline = Some(BaselineInfo {
        path: path.to_string(),
        missing,
        new,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerances_parse_relative_and_absolute() {
        let mut t = Tolerances::default();
        t.apply("allocated=5%").unwrap();
        t.apply("peak=1MiB").unwrap();
        t.apply("fds=2").unwrap();
        assert_eq!(t.get(Compared::Allocated).relative, 0.05);
        assert_eq!(t.get(Compared::Allocated).absolute, 4096.0);
        assert_eq!(t.get(Compared::Peak).absolute, 1048576.0);
        assert_eq!(t.get(Compared::Fds).absolute, 2.0);
        assert_eq!(t.get(Compared::Rss).relative, 0.10);
        for bad in [
            "allocated",
            "speed=5%",
            "allocated=-3%",
            "fds=many",
            "peak=12 parsecs",
        ] {
            assert!(t.apply(bad).is_err(), "{bad}");
        }
    }
}
