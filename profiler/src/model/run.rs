// Owns one run: its samples, per-metric verdicts and the records beside them (extensions,
// failure), with the numbers every output derives from them. Never measures nor judges.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    AttributionInfo, BudgetCheck, Comparison, Concurrency, LeakSite, Shape, Source, SourceKind,
    Sweep, Verdict,
};
use crate::sample::{Metric, Sample};
use crate::stats::median;

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
    /// `program` (a started program, through the preload library), or `none` (no
    /// `profiler::Alloc` installed, or no heap counters for a program: heap fields are null).
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
    /// K copies at once for each K of `--concurrency`: the levels and the scaling verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
    /// Memory against input size (`--sweep`): a point per size and the fitted classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<Sweep>,
    /// Heap per span name during the run, when `profiler::SpanMemory` is installed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<super::SpanRecord>,
    pub verdict: Verdict,
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
    /// A program outside this process, counted by the preload library (`profile -- COMMAND`).
    Program,
}

/// A background sample between iteration boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IntervalSample {
    pub elapsed_ms: f64,
    /// The iteration in progress (1-based; 0 before the first).
    pub iteration: u32,
    pub heap_bytes: Option<i64>,
    pub rss_bytes: Option<u64>,
    /// Pages of mapped files within `rss_bytes`, as in [`Sample::rss_file_bytes`].
    #[serde(default)]
    pub rss_file_bytes: Option<u64>,
}

impl IntervalSample {
    /// RSS without the pages of mapped files, as the verdict judges it (all of RSS where they
    /// are unknown).
    pub fn judged_rss(&self) -> Option<f64> {
        crate::sample::judged_rss(self.rss_bytes, self.rss_file_bytes)
    }
}

/// The verdict on one metric, with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricReport {
    pub verdict: Verdict,
    /// Whether a leak of this metric fails the run (in process RSS warns, unless it grew past
    /// the whole counted heap).
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
    /// A leak the run confirmed by itself (containers seen doubling in its first half doubled
    /// again in its second, or growth the idle process kept between two checkpoints): it
    /// needs no run to twice the iterations.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirmed_within: bool,
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
            // Iteration 0: the message says where (a sweep names its size and repetition).
            FailureKind::Timeout | FailureKind::Hung | FailureKind::Program
                if self.iteration == 0 =>
            {
                self.message.clone()
            }
            FailureKind::Timeout | FailureKind::Hung | FailureKind::Program => {
                format!("{} (iteration {})", self.message, self.iteration)
            }
        }
    }
}

impl Run {
    /// Whether the heap grows: heap bytes or blocks judged a leak or inconclusive (what
    /// attribution looks for sites of).
    pub fn heap_grows(&self) -> bool {
        [Metric::HeapBytes, Metric::HeapBlocks].iter().any(|m| {
            self.metrics
                .get(m)
                .is_some_and(|m| m.verdict != Verdict::Clean)
        })
    }

    /// Whether heap bytes or blocks leak, gating (what fails a leak check on the heap).
    pub fn heap_leaks(&self) -> bool {
        [Metric::HeapBytes, Metric::HeapBlocks].iter().any(|m| {
            self.metrics
                .get(m)
                .is_some_and(|m| m.gating && m.verdict == Verdict::Leak)
        })
    }

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
            concurrency: None,
            sweep: None,
            spans: Vec::new(),
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

    /// Whether a budget was exceeded (which stops the run where it is).
    pub fn over_budget(&self) -> bool {
        self.budgets.iter().any(|b| b.exceeded)
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

    /// The heap charged to span `name` during the run (with `profiler::SpanMemory`).
    pub fn span(&self, name: &str) -> Option<&super::SpanRecord> {
        self.spans.iter().find(|s| s.name == name)
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
