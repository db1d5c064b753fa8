// Owns the record of K copies run at once (`--concurrency`): one level per K, the scaling
// verdict across levels, and the load limits with the sentences of the ones exceeded. Never
// measures nor judges: the engine fills the levels, the judge the scaling.

use serde::{Deserialize, Serialize};

use super::Verdict;
use crate::format::format_bytes;

/// The most copies one level may run (`--concurrency` refuses more).
pub const MAX_COPIES: u32 = 64;

/// A run of K copies at once for each K of `--concurrency`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Concurrency {
    /// One per level, in the order asked for.
    pub levels: Vec<Level>,
    /// Does memory per copy stay flat as K grows, and does throughput scale.
    pub scaling: Scaling,
    /// The load thresholds the run was held to (part of the report, so that a saved report
    /// reproduces its own status).
    #[serde(default)]
    pub limits: LoadLimits,
}

/// K copies at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Level {
    /// K: copies run at once.
    pub copies: u32,
    /// Iterations of all copies, failed ones included.
    pub iterations: u64,
    /// Failed iterations: a panic in process; a program copy that exited non-zero on its own.
    pub failures: u64,
    /// Iterations per second, all copies together (null when nothing marks iterations).
    pub throughput_per_s: Option<f64>,
    /// Iteration time over every copy's iterations (null without iterations).
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Heap peak of the whole (the process above its heap before the level, or the sum of
    /// the programs' heaps at their peak), null without heap counters.
    pub heap_peak_bytes: Option<u64>,
    /// RSS peak of the whole (the process; for programs the highest sum of their RSS).
    pub rss_peak_bytes: Option<u64>,
    /// The largest peak of any one copy: its own heap in process (its thread's counters, its
    /// setup included); for a program its heap with heap counters, else its RSS.
    pub peak_per_copy_bytes: Option<u64>,
    /// What `peak_per_copy_bytes` is: `heap` or `rss`.
    #[serde(default)]
    pub per_copy: PerCopy,
    /// The largest RSS peak of any one program copy (null in process: threads share one RSS).
    #[serde(default)]
    pub rss_peak_per_copy_bytes: Option<u64>,
    /// Each copy's peak, by copy index (the spread is the noise of the scaling verdict).
    #[serde(default)]
    pub copy_peaks_bytes: Vec<u64>,
    /// CPU time of the whole during the level.
    pub cpu_ms: Option<f64>,
    /// Wall time of the level.
    #[serde(default)]
    pub wall_ms: f64,
    /// The leak verdict of the level: a leak in any copy is a leak of the level.
    pub verdict: Verdict,
    /// Why, naming the copy when one leaks.
    #[serde(default)]
    pub reason: String,
}

/// What one copy's peak counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PerCopy {
    #[default]
    Heap,
    Rss,
}

impl PerCopy {
    pub fn word(self) -> &'static str {
        match self {
            PerCopy::Heap => "heap",
            PerCopy::Rss => "RSS",
        }
    }
}

/// Memory per copy and throughput across levels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaling {
    /// `flat`, `grows`, or `inconclusive` (one level, or too few copies measured to tell).
    pub memory: MemoryScaling,
    /// Growth of the per-copy peak per extra copy, when it grows.
    pub memory_growth_per_copy_bytes: Option<f64>,
    /// Throughput at the largest K over throughput at the smallest.
    pub throughput_speedup: Option<f64>,
    /// The speed-up over the ratio of copies (1 = linear).
    pub throughput_efficiency: Option<f64>,
    /// One sentence a person can check against the levels.
    pub sentence: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryScaling {
    Flat,
    Grows,
    Inconclusive,
}

/// Load-test thresholds (Locust-style): exceeding one fails the run.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LoadLimits {
    /// Failed iterations allowed, in percent of a level's iterations (default 0).
    #[serde(default)]
    pub max_failure_rate_pct: f64,
    pub max_p95_ms: Option<f64>,
    pub min_throughput_per_s: Option<f64>,
    pub max_rss_per_copy_bytes: Option<u64>,
}

impl Level {
    /// Failed iterations in percent of the level's iterations.
    pub fn failure_rate_pct(&self) -> f64 {
        if self.iterations == 0 {
            return if self.failures > 0 { 100.0 } else { 0.0 };
        }
        self.failures as f64 * 100.0 / self.iterations as f64
    }

    /// The memory of one copy `--max-rss-per-copy` is held to, and what it is.
    fn rss_per_copy(&self) -> Option<(u64, &'static str)> {
        match self.rss_peak_per_copy_bytes {
            Some(rss) => Some((rss, "RSS of one copy")),
            None => self
                .peak_per_copy_bytes
                .map(|b| (b, "heap of one copy (its threads share the process's RSS)")),
        }
    }
}

impl Concurrency {
    /// One sentence per threshold exceeded, naming the level, the quantity and the limit.
    pub fn violations(&self) -> Vec<String> {
        let l = &self.limits;
        let mut out = Vec::new();
        for level in &self.levels {
            let k = level.copies;
            let rate = level.failure_rate_pct();
            if level.failures > 0 && rate > l.max_failure_rate_pct {
                out.push(format!(
                    "at K = {k}, {} of {} iterations failed ({rate:.1}%), above \
                     --max-failure-rate {}%",
                    level.failures, level.iterations, l.max_failure_rate_pct
                ));
            }
            if let (Some(max), Some(p95)) = (l.max_p95_ms, level.p95_ms)
                && p95 > max
            {
                out.push(format!(
                    "at K = {k}, the p95 iteration time {p95:.1} ms is above --max-p95 \
                     {max} ms"
                ));
            }
            if let Some(min) = l.min_throughput_per_s {
                match level.throughput_per_s {
                    Some(t) if t >= min => {}
                    t => out.push(format!(
                        "at K = {k}, the throughput {:.1}/s is below --min-throughput {min}/s",
                        t.unwrap_or(0.0)
                    )),
                }
            }
            if let (Some(max), Some((bytes, what))) =
                (l.max_rss_per_copy_bytes, level.rss_per_copy())
                && bytes > max
            {
                out.push(format!(
                    "at K = {k}, the peak {what} {} is above --max-rss-per-copy {}",
                    format_bytes(bytes as f64),
                    format_bytes(max as f64)
                ));
            }
        }
        out
    }
}
