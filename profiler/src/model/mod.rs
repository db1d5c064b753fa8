// Owns the data model every later stage reads: Report, Run, MetricReport and their records.
// Must never measure, judge, do I/O or import anything above samples and tools.

//! The report: runs of samples plus per-metric verdicts.
//!
//! Every output (terminal table, JSON, CSV, Markdown, figure, exit code) is a function of a
//! [`Report`], so a report saved as JSON can be read back and exported, re-judged or compared
//! again, and reproduces its own pass/fail ([`Report::decision`]).

mod concurrency;
mod records;
mod run;
mod source;
mod status;
mod sweep;
mod verdict;

use serde::{Deserialize, Serialize};

pub use concurrency::{
    Concurrency, Level, LoadLimits, MAX_COPIES, MemoryScaling, PerCopy, Scaling,
};
pub use records::{
    AttributionInfo, BaselineInfo, BudgetCheck, BudgetKind, Change, Compared, Comparison, LeakSite,
    SpanRecord, SpanSampling, Status,
};
pub use run::{
    Extension, Failure, FailureKind, HeapScope, IntervalSample, MetricReport, Run, XAxis,
};
pub use source::{End, Exit, Source, SourceKind};
pub use status::{Decision, Outcome};
pub use sweep::{Complexity, Fit, NO_CLASS, Point, SWEEP_FIELDS, Sweep, formula};
pub use verdict::{Shape, Verdict};

/// Version of the JSON layout; readers refuse any other.
pub const SCHEMA_VERSION: u32 = 1;
/// `tool.name` of reports this crate writes; readers refuse reports of other tools.
pub const TOOL_NAME: &str = "profiler";

/// Everything one invocation measured and decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: Tool,
    pub host: Host,
    pub runs: Vec<Run>,
    /// `leak` if any run leaks, else `inconclusive` if any run is, else `clean`.
    pub verdict: Verdict,
    /// Things the reader should know about how numbers were measured (e.g. no heap counters).
    #[serde(default)]
    pub notes: Vec<String>,
    /// The baseline this report was compared with (`--baseline`), if any.
    #[serde(default)]
    pub baseline: Option<BaselineInfo>,
    /// The run was told to fail on an inconclusive verdict (`--fail-on-inconclusive`): part
    /// of [`Report::outcome`], so that a saved report reproduces its own status.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fail_on_inconclusive: bool,
}

/// Which program wrote the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// The machine the report was measured on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    pub os: String,
    pub arch: String,
    pub cpus: u32,
    pub kernel: Option<String>,
}

impl Report {
    /// A report of these runs on this machine, with the overall verdict derived from them.
    pub fn new(runs: Vec<Run>) -> Self {
        let mut report = Report {
            schema_version: SCHEMA_VERSION,
            tool: Tool {
                name: TOOL_NAME.to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
            },
            host: Host::current(),
            runs,
            verdict: Verdict::Clean,
            notes: Vec::new(),
            baseline: None,
            fail_on_inconclusive: false,
        };
        report.refresh();
        report
    }

    /// Recompute derived fields (overall verdict, notes) after runs changed.
    pub fn refresh(&mut self) {
        self.verdict = combine(self.runs.iter().map(|r| r.verdict));
        self.notes
            .retain(|n| n != NO_ALLOC_NOTE && n != PROGRAM_NOTE);
        if self
            .runs
            .iter()
            .any(|r| r.heap_scope == HeapScope::None && r.source.kind == SourceKind::InProcess)
        {
            self.notes.push(NO_ALLOC_NOTE.to_string());
        }
        // A started program with the preload library has heap counters (`program` scope).
        // One that ended before its first sample has no notes about its heap to point to.
        if self
            .runs
            .iter()
            .any(|r| r.is_program() && r.heap_scope == HeapScope::None && !r.samples.is_empty())
        {
            self.notes.push(PROGRAM_NOTE.to_string());
        }
    }

    /// `true` if the profiler was interrupted (SIGINT, SIGTERM, SIGHUP) before a run finished.
    pub fn interrupted(&self) -> bool {
        self.runs
            .iter()
            .any(|r| r.source.end == Some(End::Interrupted))
    }

    /// The overall verdict: `Leak` if any run leaks.
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// `true` if any workload panicked.
    pub fn failed(&self) -> bool {
        self.runs.iter().any(|r| r.failure.is_some())
    }

    /// Every budget exceeded, with its run.
    pub fn budgets_exceeded(&self) -> impl Iterator<Item = (&Run, &BudgetCheck)> {
        self.runs
            .iter()
            .flat_map(|r| r.budgets.iter().map(move |b| (r, b)))
            .filter(|(_, b)| b.exceeded)
    }

    /// Every load threshold exceeded (`--concurrency`), as one sentence each, with its run.
    pub fn load_limits_exceeded(&self) -> impl Iterator<Item = (&Run, String)> {
        self.runs.iter().flat_map(|r| {
            r.concurrency
                .iter()
                .flat_map(|c| c.violations())
                .map(move |v| (r, v))
        })
    }

    /// Every fitted growth class above `--max-complexity` (`--sweep`), one sentence each,
    /// with its run.
    pub fn complexity_exceeded(&self) -> impl Iterator<Item = (&Run, String)> {
        self.runs.iter().flat_map(|r| {
            r.sweep
                .iter()
                .flat_map(|s| s.violations())
                .map(move |v| (r, v))
        })
    }

    /// Every regression against the baseline, with its run.
    pub fn regressions(&self) -> impl Iterator<Item = (&Run, &Change)> {
        self.runs.iter().flat_map(|r| {
            r.baseline
                .iter()
                .flat_map(|c| c.regressions())
                .map(move |c| (r, c))
        })
    }

    /// Panic naming every budget exceeded, every budget that could not be checked (nothing it
    /// limits was measured: a test binary without `profiler::Alloc`, say) and every failed
    /// workload (for use in tests): a limit never applied must not pass as within.
    #[track_caller]
    pub fn assert_within_budget(&self) {
        let mut problems = Vec::new();
        for run in &self.runs {
            if let Some(f) = &run.failure {
                problems.push(format!("{}: {}", run.workload, f.sentence()));
            }
            for b in &run.budgets {
                if b.exceeded || b.worst_bytes.is_none() {
                    problems.push(format!("{}: {}", run.workload, b.message));
                }
            }
        }
        if !problems.is_empty() {
            panic!(
                "profiler: budget exceeded or not checked\n  {}",
                problems.join("\n  ")
            );
        }
    }

    /// Panic naming every fitted growth class above the sweep's `max_complexity`, and every
    /// one that cannot be told against it (for use in tests; see `Profiler::sweep`).
    #[track_caller]
    pub fn assert_within_complexity(&self) {
        let mut problems: Vec<String> = Vec::new();
        for run in &self.runs {
            if let Some(s) = &run.sweep {
                for v in s.violations() {
                    problems.push(format!("{}: {v}", run.workload));
                }
                for u in s.undecided() {
                    problems.push(format!("{}: undecided, {u}", run.workload));
                }
            }
        }
        if !problems.is_empty() {
            panic!(
                "profiler: growth class check failed\n  {}",
                problems.join("\n  ")
            );
        }
    }

    /// Panic with the sentences of every leaking metric (for use in tests).
    ///
    /// ```should_panic
    /// # use profiler::Profiler;
    /// let mut kept = Vec::new();
    /// // Without `profiler::Alloc` installed only fds and threads are judged; leak threads:
    /// Profiler::new("threads")
    ///     .run(|| kept.push(std::thread::spawn(|| std::thread::park())))
    ///     .assert_no_leaks();
    /// ```
    #[track_caller]
    pub fn assert_no_leaks(&self) {
        let mut problems = Vec::new();
        for run in &self.runs {
            if let Some(f) = &run.failure {
                problems.push(format!("{}: {}", run.workload, f.sentence()));
            }
            // In process without profiler::Alloc the heap was not seen: a Box::leak per
            // iteration passed. A check that could not see must not pass.
            if run.heap_scope == HeapScope::None && !run.is_program() {
                problems.push(format!(
                    "{}: heap not checked: {NO_ALLOC_NOTE}",
                    run.workload
                ));
            }
            if let Some(leak) = run.sweep.as_ref().and_then(|s| s.retains_input()) {
                problems.push(format!("{}: {leak}", run.workload));
            }
            for (metric, m) in &run.metrics {
                if m.gating && m.verdict == Verdict::Leak {
                    problems.push(format!("{}: {metric} leaks: {}", run.workload, m.reason));
                }
                // A check that could not see must not pass.
                if m.gating && m.shape == Shape::Blind {
                    problems.push(format!(
                        "{}: {metric} not checked: {}",
                        run.workload, m.reason
                    ));
                }
            }
            // The sites found (with .attribute()), where the reader fixes the leak.
            if run.heap_leaks() {
                for site in run.leak_sites.iter().take(3) {
                    problems.push(format!(
                        "    at {} ({}): {} per iteration",
                        site.function,
                        site.location,
                        crate::format::format_bytes(site.bytes_per_iteration)
                    ));
                }
            }
        }
        if !problems.is_empty() {
            // A bounded cache still filling when the run ended is growth like any leak: the
            // way to tell is a run past its bound (an evaluator's map of 35 to 1,000 entries
            // filled one per call and failed at 40 iterations, clean at 80 for the smallest).
            if self.runs.iter().any(Run::heap_leaks) {
                problems.push(
                    "(a cache or pool filling toward a bound it has not reached yet grows the \
                     same way: if this is one, give the check more iterations than the bound, \
                     with .iterations(n))"
                        .to_string(),
                );
            }
            panic!("profiler: leak check failed\n  {}", problems.join("\n  "));
        }
    }
}

const PROGRAM_NOTE: &str = "heap metrics are null for a program run without heap counters (its \
     notes say why): RSS is its memory signal, and a leak in RSS fails the run like one in fds \
     or threads";

const NO_ALLOC_NOTE: &str = "heap metrics are null: the binary does not install profiler::Alloc \
     (add `#[global_allocator] static ALLOC: profiler::Alloc = profiler::Alloc::new();`)";

/// `Leak` beats `Inconclusive` beats `Clean`.
pub(crate) fn combine(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
    verdicts
        .into_iter()
        .fold(Verdict::Clean, |acc, v| match (acc, v) {
            (Verdict::Leak, _) | (_, Verdict::Leak) => Verdict::Leak,
            (Verdict::Inconclusive, _) | (_, Verdict::Inconclusive) => Verdict::Inconclusive,
            _ => Verdict::Clean,
        })
}

impl Host {
    fn current() -> Self {
        Host {
            os: std::env::consts::OS.to_string(),
            arch: std::env::consts::ARCH.to_string(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            kernel: kernel_release(),
        }
    }
}

fn kernel_release() -> Option<String> {
    #[cfg(unix)]
    {
        // SAFETY: zeroed utsname is a valid out-buffer; release is NUL-terminated.
        let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
        if unsafe { libc::uname(&mut uts) } != 0 {
            return None;
        }
        let release = unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) };
        Some(release.to_string_lossy().into_owned())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::Metric;

    #[test]
    fn combine_orders_leak_over_inconclusive_over_clean() {
        use Verdict::*;
        assert_eq!(combine([]), Clean);
        assert_eq!(combine([Clean, Inconclusive]), Inconclusive);
        assert_eq!(combine([Inconclusive, Leak, Clean]), Leak);
    }

    #[test]
    fn a_report_written_before_programs_existed_reads_as_in_process_per_iteration() {
        let old = r#"{"schema_version": 1, "tool": {"name": "profiler", "version": "0.1.0"},
            "host": {"os": "linux", "arch": "x86_64", "cpus": 2, "kernel": null},
            "verdict": "clean",
            "runs": [{"workload": "w", "iterations": 1, "warmup": 0, "heap_scope": "none",
                "samples": [{"iteration": 0, "elapsed_ms": 0.0, "heap_bytes": null,
                    "heap_blocks": null, "heap_peak_bytes": null, "allocated_bytes": null,
                    "allocations": null, "rss_bytes": 4096, "vsize_bytes": null, "fds": 3,
                    "threads": 1, "duration_ms": null, "cpu_ms": null}],
                "metrics": {"fds": {"verdict": "clean", "gating": true,
                    "slope_per_iteration": 0.0, "ci": [0.0, 0.0], "warmup": 0,
                    "p_value": 1.0, "shape": "flat", "after_warmup": 3.0, "end": 3.0,
                    "growth": 0.0, "reason": "flat"}},
                "verdict": "clean"}]}"#;
        let report: Report = serde_json::from_str(old).unwrap();
        let run = &report.runs[0];
        assert_eq!(run.source, Source::default());
        assert_eq!(run.source.kind, SourceKind::InProcess);
        assert_eq!(run.x_axis, XAxis::Iteration);
        assert!(!run.is_program());
        assert_eq!(run.metrics[&Metric::Fds].slope(), Some(0.0));
        assert_eq!(run.metrics[&Metric::Fds].slope_per_second, None);
    }

    #[test]
    fn exits_and_endings_read_as_sentences() {
        let killed = Exit {
            code: None,
            signal: Some(6),
        };
        assert_eq!(killed.to_string(), "was killed by signal 6 (SIGABRT)");
        assert!(!killed.success());
        let source = Source {
            kind: SourceKind::Command,
            pid: Some(42),
            marker: Some("done".into()),
            end: Some(End::Iterations),
            exit: Some(Exit {
                code: None,
                signal: Some(15),
            }),
            ..Source::default()
        };
        assert_eq!(
            source.sampling().unwrap(),
            "started as pid 42 · sampled at each output line matching /done/"
        );
        assert_eq!(
            source.ending(40, false).unwrap(),
            "stopped by profile after 40 marked iterations; it was killed by signal 15 (SIGTERM)"
        );
        assert_eq!(
            source.ending(11, true).unwrap(),
            "stopped by profile over a budget after 11 marked iterations; it was killed by \
             signal 15 (SIGTERM)"
        );
        assert_eq!(Source::default().ending(3, false), None);
    }
}
