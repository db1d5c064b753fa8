// Owns the data model every later stage reads: Report, Run, MetricReport and their records.
// Must never measure, judge, do I/O or import anything above samples and tools.

//! The report: runs of samples plus per-metric verdicts.
//!
//! Every output (terminal table, JSON, CSV, Markdown, figure, exit code) is a function of a
//! [`Report`], so a report saved as JSON can be read back and exported, re-judged or compared
//! again, and reproduces its own pass/fail ([`Report::status`]).

mod records;
mod status;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sample::{Metric, Sample};
use crate::stats::median;

pub use records::{
    AttributionInfo, BaselineInfo, BudgetCheck, BudgetKind, Change, Compared, Comparison, LeakSite,
    Status,
};
pub use status::{Decision, Outcome};

/// Whether a metric, a run or a report leaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Leak,
    Clean,
    Inconclusive,
}

impl Verdict {
    /// The verdict's word as every output writes it: `leak`, `clean`, `inconclusive`.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Leak => "leak",
            Verdict::Clean => "clean",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// Which rule of the verdict decided (docs/VERDICT.md), written as in the JSON report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// Steady growth, or its absence, judged by the trend.
    #[default]
    Linear,
    /// Growth that stopped during the (extended) warm-up: a cache that filled.
    Plateau,
    /// Growth still slowing down when the warm-up extension ran out.
    Decelerating,
    /// One or two level shifts, or steps that are not a rhythm.
    Steps,
    /// Up-steps at a steady rhythm.
    RecurringSteps,
    /// Drops between rises: judged by the floors between drops.
    Sawtooth,
    /// Every sample of the tail the same, or no significant trend.
    Flat,
    /// No significant trend, but too noisy to bound it.
    Noisy,
    /// Too few samples after the warm-up.
    TooShort,
    /// Samples that are not finite numbers.
    NonFinite,
}

impl Shape {
    /// The name the JSON report uses: `linear`, `recurring-steps`, `too-short`...
    pub fn as_str(self) -> &'static str {
        match self {
            Shape::Linear => "linear",
            Shape::Plateau => "plateau",
            Shape::Decelerating => "decelerating",
            Shape::Steps => "steps",
            Shape::RecurringSteps => "recurring-steps",
            Shape::Sawtooth => "sawtooth",
            Shape::Flat => "flat",
            Shape::Noisy => "noisy",
            Shape::TooShort => "too-short",
            Shape::NonFinite => "non-finite",
        }
    }
}

impl PartialEq<&str> for Shape {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.word())
    }
}

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

/// One workload run for some iterations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub workload: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Iterations completed (samples 1..=iterations).
    pub iterations: u32,
    /// Warm-up iterations left out of the analysis (the largest of the metrics' warm-ups).
    pub warmup: u32,
    /// How the heap was counted: `process` (every thread), `thread` (the calling thread only),
    /// or `none` (no `profiler::Alloc` installed: heap fields are null).
    pub heap_scope: HeapScope,
    /// One sample before the first iteration and one after each iteration.
    pub samples: Vec<Sample>,
    /// Samples taken by the background sampler between boundaries (with `interval`).
    #[serde(default)]
    pub interval_samples: Vec<IntervalSample>,
    /// Verdict and numbers per metric (metrics that could not be measured are absent).
    pub metrics: BTreeMap<Metric, MetricReport>,
    /// Why the run went on past the iterations asked for, in order.
    #[serde(default)]
    pub extensions: Vec<Extension>,
    /// Set when the workload panicked: the samples before it are kept.
    #[serde(default)]
    pub failure: Option<Failure>,
    /// Budgets checked against this run (`--max-peak`, `--max-allocated`, `--max-rss`).
    #[serde(default)]
    pub budgets: Vec<BudgetCheck>,
    /// This run against the same workload in the baseline (`--baseline`).
    #[serde(default)]
    pub baseline: Option<Comparison>,
    /// Call sites whose retained memory grows with the iterations (`--attribute`), by bytes
    /// retained per iteration.
    #[serde(default)]
    pub leak_sites: Vec<LeakSite>,
    /// How the attribution passes went, if they ran.
    #[serde(default)]
    pub attribution: Option<AttributionInfo>,
    /// Why attribution did not run or failed, if it was asked for.
    #[serde(default)]
    pub attribution_note: Option<String>,
    /// What was measured: a workload in this process, a command started for the run, or a
    /// running process attached to by pid (absent in older reports: in process).
    #[serde(default)]
    pub source: Source,
    /// What one step of the samples is: an `iteration` (a workload's, or a marker line of a
    /// program) or a `second` of a program's time series. Slopes are per that unit.
    #[serde(default)]
    pub x_axis: XAxis,
    pub verdict: Verdict,
}

/// Where a run's samples come from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Source {
    pub kind: SourceKind,
    /// The command line started (`kind: command`), program first; empty otherwise.
    #[serde(default)]
    pub command: Vec<String>,
    /// The process sampled: the started command's pid, or the one attached to.
    #[serde(default)]
    pub pid: Option<u32>,
    /// The regular expression whose matching output lines were iteration boundaries.
    #[serde(default)]
    pub marker: Option<String>,
    /// Whether the process's descendants were summed into every sample.
    #[serde(default)]
    pub include_children: bool,
    /// Milliseconds between two time samples.
    #[serde(default)]
    pub interval_ms: Option<f64>,
    /// Why sampling stopped (null for a workload in process).
    #[serde(default)]
    pub end: Option<End>,
    /// How the started command ended (null when it was not ours to wait for).
    #[serde(default)]
    pub exit: Option<Exit>,
    /// Things to know about how the program was measured (e.g. output that came in bursts).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Where samples come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A workload run in this process (heap counters possible; RSS only warns).
    #[default]
    InProcess,
    /// A command started by the profiler (no heap counters; RSS gates).
    Command,
    /// A running process attached to by pid, read-only (no heap counters; RSS gates).
    Pid,
}

/// Why sampling of a program stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// The program exited (or was killed) on its own.
    Exited,
    /// Enough marked iterations were seen: the profiler stopped the program.
    Iterations,
    /// `--duration` elapsed (a started program is then stopped; an attached one is left alone).
    Duration,
    /// The profiler was interrupted (SIGINT or SIGTERM) and stopped the program.
    Interrupted,
    /// The attached process ended; its exit status belongs to its parent.
    Vanished,
}

/// The exit status of a started program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    /// The exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
}

impl Source {
    /// How the program was sampled, e.g. "pid 4242 · at each output line matching /done/";
    /// `None` for a workload in process.
    pub fn sampling(&self) -> Option<String> {
        let mut parts = Vec::new();
        match self.kind {
            SourceKind::InProcess => return None,
            SourceKind::Command => parts.push(match self.pid {
                Some(pid) => format!("started as pid {pid}"),
                None => "started".to_string(),
            }),
            SourceKind::Pid => parts.push(match self.pid {
                Some(pid) => format!("attached to pid {pid}, read-only"),
                None => "attached read-only".to_string(),
            }),
        }
        match (&self.marker, self.interval_ms) {
            (Some(m), _) => parts.push(format!("sampled at each output line matching /{m}/")),
            (None, Some(ms)) => parts.push(format!("sampled every {ms:.0} ms")),
            (None, None) => {}
        }
        if self.include_children {
            parts.push("with its descendants".to_string());
        }
        Some(parts.join(" · "))
    }

    /// How sampling ended, e.g. "stopped by profile after 40 marked iterations (killed by
    /// signal 15 (SIGTERM))"; `None` for a workload in process.
    pub fn ending(&self, iterations: u32) -> Option<String> {
        let exit = self.exit.map(|e| format!("; it {e}")).unwrap_or_default();
        let left = if self.kind == SourceKind::Pid {
            " (left running)"
        } else {
            ""
        };
        Some(match self.end? {
            End::Exited => match self.exit {
                Some(e) => format!("the program {e}"),
                None => "the program ended".to_string(),
            },
            End::Iterations => {
                format!("stopped by profile after {iterations} marked iterations{exit}")
            }
            End::Duration => format!("--duration ran out{left}{exit}"),
            End::Interrupted => format!("interrupted{left}{exit}"),
            End::Vanished => "the process ended while it was sampled".to_string(),
        })
    }
}

impl Exit {
    /// Exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0) && self.signal.is_none()
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal) {
            (_, Some(sig)) => write!(f, "was killed by signal {sig}{}", signal_name(sig)),
            (Some(code), None) => write!(f, "exited with code {code}"),
            (None, None) => f.write_str("ended"),
        }
    }
}

/// " (SIGABRT)" for the signals people meet, else "".
fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => " (SIGHUP)",
        2 => " (SIGINT)",
        3 => " (SIGQUIT)",
        4 => " (SIGILL)",
        6 => " (SIGABRT)",
        7 => " (SIGBUS)",
        8 => " (SIGFPE)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        13 => " (SIGPIPE)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

/// The unit of a run's x axis, and so of its slopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum XAxis {
    /// Samples at iteration boundaries; slopes per iteration.
    #[default]
    Iteration,
    /// Samples evenly spaced in time; slopes per second.
    Second,
}

impl XAxis {
    /// "iteration" or "second", as in "per iteration".
    pub fn unit(self) -> &'static str {
        match self {
            XAxis::Iteration => "iteration",
            XAxis::Second => "second",
        }
    }

    /// The short suffix of a rate: "/iteration" or "/s".
    pub fn per(self) -> &'static str {
        match self {
            XAxis::Iteration => "/iteration",
            XAxis::Second => "/s",
        }
    }
}

/// Which allocations the heap metrics count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeapScope {
    Process,
    Thread,
    None,
}

/// A background sample between iteration boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IntervalSample {
    pub elapsed_ms: f64,
    /// The iteration in progress (1-based; 0 before the first).
    pub iteration: u32,
    pub heap_bytes: Option<i64>,
    pub rss_bytes: Option<u64>,
}

/// The verdict on one metric, with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricReport {
    pub verdict: Verdict,
    /// Whether a leak of this metric fails the run (RSS only warns).
    pub gating: bool,
    /// Theil-Sen slope over the analysed samples, per iteration (null on a time axis).
    pub slope_per_iteration: Option<f64>,
    /// The slope per second, on a time axis (`x_axis: second`); else null.
    #[serde(default)]
    pub slope_per_second: Option<f64>,
    /// 95% confidence bounds of the slope, [lo, hi], in the slope's unit.
    pub ci: Option<[f64; 2]>,
    /// Leading iterations left out as warm-up for this metric.
    pub warmup: u32,
    /// Mann-Kendall one-sided p-value of an upward trend.
    pub p_value: Option<f64>,
    /// Which rule decided (linear, flat, plateau, steps, sawtooth, ...).
    pub shape: Shape,
    /// Value after the warm-up and at the end; `growth` = end - after warm-up.
    pub after_warmup: f64,
    pub end: f64,
    pub growth: f64,
    /// One sentence a person can check against the plot.
    pub reason: String,
}

/// Why a run continued past the iterations first asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    pub from: u32,
    pub to: u32,
    pub reason: String,
}

/// A run that did not complete: the samples before it are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The iteration that failed (1-based; 0 for a setup that failed).
    pub iteration: u32,
    /// The panic message, the setup's error, or what timed out or crashed.
    pub message: String,
    /// What went wrong (absent in older reports: a panic).
    #[serde(default)]
    pub kind: FailureKind,
}

/// What ended a run early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The workload panicked.
    #[default]
    Panic,
    /// The workload's setup returned an error or panicked.
    Setup,
    /// The run passed `--timeout` (between iterations).
    Timeout,
    /// An iteration was still running a second after `--timeout`, and was abandoned.
    Hung,
    /// A started program crashed or exited non-zero.
    Program,
}

impl Failure {
    pub fn new(kind: FailureKind, iteration: u32, message: impl Into<String>) -> Self {
        Failure {
            iteration,
            message: message.into(),
            kind,
        }
    }

    /// One sentence saying what happened, for the table, the Markdown and test panics.
    pub fn sentence(&self) -> String {
        match self.kind {
            FailureKind::Panic => format!(
                "the workload panicked in iteration {}: {}",
                self.iteration, self.message
            ),
            FailureKind::Setup => format!("the workload's setup failed: {}", self.message),
            FailureKind::Timeout | FailureKind::Hung | FailureKind::Program => {
                format!("{} (iteration {})", self.message, self.iteration)
            }
        }
    }
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
        if self.runs.iter().any(Run::is_program) {
            self.notes.push(PROGRAM_NOTE.to_string());
        }
    }

    /// `true` if the profiler was interrupted (SIGINT, SIGTERM) before a run finished.
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

    /// Every regression against the baseline, with its run.
    pub fn regressions(&self) -> impl Iterator<Item = (&Run, &Change)> {
        self.runs.iter().flat_map(|r| {
            r.baseline
                .iter()
                .flat_map(|c| c.regressions())
                .map(move |c| (r, c))
        })
    }

    /// Panic naming every budget exceeded (for use in tests).
    #[track_caller]
    pub fn assert_within_budget(&self) {
        let over: Vec<String> = self
            .budgets_exceeded()
            .map(|(r, b)| format!("{}: {}", r.workload, b.message))
            .collect();
        if !over.is_empty() {
            panic!("profiler: budget exceeded\n  {}", over.join("\n  "));
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
            for (metric, m) in &run.metrics {
                if m.gating && m.verdict == Verdict::Leak {
                    problems.push(format!("{}: {metric} leaks: {}", run.workload, m.reason));
                }
            }
        }
        if !problems.is_empty() {
            panic!("profiler: leak check failed\n  {}", problems.join("\n  "));
        }
    }
}

const PROGRAM_NOTE: &str = "heap metrics are null for a program outside this process: RSS is \
     its memory signal, and a leak in RSS fails the run like one in fds or threads";

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

impl Run {
    /// A run of `workload` with nothing measured yet: no samples, no verdicts (clean until
    /// judged), in process. Constructors fill in what they know with `..Run::new(..)`.
    pub fn new(workload: impl Into<String>, heap_scope: HeapScope) -> Self {
        Run {
            workload: workload.into(),
            description: None,
            iterations: 0,
            warmup: 0,
            heap_scope,
            samples: Vec::new(),
            interval_samples: Vec::new(),
            metrics: BTreeMap::new(),
            extensions: Vec::new(),
            failure: None,
            budgets: Vec::new(),
            baseline: None,
            leak_sites: Vec::new(),
            attribution: None,
            attribution_note: None,
            source: Source::default(),
            x_axis: XAxis::default(),
            verdict: Verdict::Clean,
        }
    }

    /// The gating metrics that leak, by name.
    pub fn leaking_metrics(&self) -> Vec<&'static str> {
        self.metrics
            .iter()
            .filter(|(_, m)| m.gating && m.verdict == Verdict::Leak)
            .map(|(k, _)| k.name())
            .collect()
    }

    /// The series of one metric over the boundary samples, if it was measured in every sample.
    pub fn series(&self, metric: Metric) -> Option<Vec<f64>> {
        self.samples.iter().map(|s| metric.of(s)).collect()
    }

    /// Median bytes allocated per iteration (what every output shows), if measured.
    pub fn allocated_per_iteration(&self) -> Option<f64> {
        median_of(
            self.samples
                .iter()
                .skip(1)
                .filter_map(|s| s.allocated_bytes),
        )
    }

    /// Median allocations per iteration, if measured.
    pub fn allocations_per_iteration(&self) -> Option<f64> {
        median_of(self.samples.iter().skip(1).filter_map(|s| s.allocations))
    }

    /// Median wall time of an iteration in milliseconds.
    pub fn median_duration_ms(&self) -> Option<f64> {
        let d: Vec<f64> = self.samples.iter().filter_map(|s| s.duration_ms).collect();
        (!d.is_empty()).then(|| median(&d))
    }

    /// The highest heap peak of any iteration above the live heap at the run's start: what
    /// the iterations needed on top of what was there before (budgets and baselines use it).
    pub fn peak_above_start(&self) -> Option<f64> {
        let start = self.samples.first()?.heap_bytes?;
        self.samples
            .iter()
            .skip(1)
            .filter_map(|s| s.heap_peak_bytes)
            .max()
            .map(|p| (p - start) as f64)
    }

    /// `true` for a program sampled from outside (a started command or an attached pid).
    pub fn is_program(&self) -> bool {
        self.source.kind != SourceKind::InProcess
    }

    /// The x coordinate of every sample: the iteration, or seconds since the run started.
    pub fn xs(&self) -> Vec<f64> {
        self.samples
            .iter()
            .map(|s| match self.x_axis {
                XAxis::Iteration => f64::from(s.iteration),
                XAxis::Second => s.elapsed_ms / 1e3,
            })
            .collect()
    }

    /// Seconds of the run left out as warm-up (time axis only).
    pub fn warmup_secs(&self) -> Option<f64> {
        (self.x_axis == XAxis::Second).then(|| {
            self.samples
                .get(self.warmup_index(self.warmup))
                .map_or(0.0, |s| s.elapsed_ms / 1e3)
        })
    }

    /// The index in `samples` of the first sample after a warm-up of `warmup` iterations (a
    /// metric's or the run's; sampling intervals on a time axis). A long run's samples are
    /// merged, so this is not `warmup` itself once a sample stands for several iterations.
    pub fn warmup_index(&self, warmup: u32) -> usize {
        self.samples
            .iter()
            .position(|s| s.iteration >= warmup)
            .unwrap_or(self.samples.len())
    }
}

impl MetricReport {
    /// The slope in the run's x-axis unit (per iteration or per second).
    pub fn slope(&self) -> Option<f64> {
        self.slope_per_second.or(self.slope_per_iteration)
    }
}

fn median_of(values: impl Iterator<Item = i64>) -> Option<f64> {
    let v: Vec<f64> = values.map(|v| v as f64).collect();
    (!v.is_empty()).then(|| median(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

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
            source.ending(40).unwrap(),
            "stopped by profile after 40 marked iterations; it was killed by signal 15 (SIGTERM)"
        );
        assert_eq!(Source::default().ending(3), None);
    }
}
