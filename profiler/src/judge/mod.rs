// Owns turning a run's samples into per-metric verdicts, and deciding whether a run goes on.
// Must never touch the workload or the allocator: it reads samples and nothing else.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::model::{HeapScope, MetricReport, Run, Shape, SourceKind, XAxis, combine};
use crate::sample::{Metric, Sample};
use crate::verdict::{self, Thresholds, Verdict};

/// The samples to judge and the span each stands for: all of them, or, when a long run
/// merged neighbours (`Sample::span` > 1), the evenly spaced ones. A partly filled last
/// bucket is closer to its neighbour than the others and is left out.
fn evenly_spaced(samples: &[Sample]) -> (u32, Vec<Sample>) {
    let span = samples.get(1).map_or(1, |s| s.span.max(1));
    let kept = samples
        .iter()
        .enumerate()
        .filter(|(i, s)| span == 1 || *i == 0 || s.span == span)
        .map(|(_, s)| *s)
        .collect();
    (span, kept)
}

/// Does a leak of `metric` fail a run whose heap was counted in `scope`, sampled from `source`?
///
/// In process, RSS does not (it warns: the heap counters are the memory signal; see
/// `rss_outside_heap` for the leak that gates all the same), and in
/// thread scope fds and threads are process-wide, so other tests running in parallel move
/// them: they are reported but do not gate (`Profiler::run` checks a leak of them again in
/// process scope, alone, where they do). A program outside the process has no heap
/// counters: its RSS is the memory signal and gates, like its fds and threads.
pub fn gates(metric: Metric, scope: HeapScope, source: SourceKind) -> bool {
    match source {
        SourceKind::InProcess => {
            metric.gates()
                && (scope != HeapScope::Thread
                    || matches!(metric, Metric::HeapBytes | Metric::HeapBlocks))
        }
        SourceKind::Command | SourceKind::Pid => true,
    }
}

/// RSS thresholds per marked iteration of a program outside the process: the in-process ones
/// (tau = 4 KiB, tau_ok = 64 KiB, a page as quantum), on purpose. Measured on CPython 3.11
/// (4 steady scripts x 8 runs: churn of 1k-50k dicts, a turning-over cache, mixed-size
/// fragmenting allocations): RSS moves in 128 KiB steps (glibc's heap top) and arena-sized
/// level shifts, which the step and sawtooth rules already absorb, and the slope's lower
/// bound never exceeded 0. A larger tau only hid real leaks: 16 KiB per iteration needs
/// tau < 16 KiB to be called (found at 160 iterations by the recurring-steps rule).
pub fn program_rss_thresholds() -> Thresholds {
    Thresholds::rss_bytes(0.0)
}

/// RSS thresholds of a time series, per second: the per-iteration ones per second instead. A
/// leak needs growth above 4 KiB/s (14 MiB an hour) with its lower bound; clean needs the
/// upper bound at or below 64 KiB/s.
pub const RSS_TAU_PER_SECOND: f64 = 4.0 * 1024.0;
/// See [`RSS_TAU_PER_SECOND`].
pub const RSS_TAU_OK_PER_SECOND: f64 = 64.0 * 1024.0;

/// How a run's samples are judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judging {
    /// Iterations (boundary samples) or seconds (a program sampled in time).
    pub axis: XAxis,
    /// Whose heap the counters saw (decides what gates in process).
    pub scope: HeapScope,
    /// Where the samples came from (decides what gates, and RSS thresholds).
    pub source: SourceKind,
    /// Leading iterations (iteration axis) or seconds (time axis) left out at least; `None`
    /// for the automatic warm-up.
    pub warmup: Option<f64>,
    /// The process runs nothing but this run (and copies of it, `--concurrency`): its fds and
    /// threads, process-wide, are the run's own, so they gate in thread scope too.
    pub process_alone: bool,
}

impl Judging {
    /// A workload run in this process, judged per iteration.
    pub fn in_process(scope: HeapScope, warmup: Option<u32>) -> Self {
        Judging {
            axis: XAxis::Iteration,
            scope,
            source: SourceKind::InProcess,
            warmup: warmup.map(f64::from),
            process_alone: false,
        }
    }

    /// The same, in a process that runs nothing else (see [`Judging::process_alone`]).
    pub fn alone(self) -> Self {
        Judging {
            process_alone: true,
            ..self
        }
    }
}

/// Judge every metric measured in all of `samples`, for a workload run in this process.
pub fn judge_samples(
    samples: &[Sample],
    warmup: Option<u32>,
    scope: HeapScope,
) -> BTreeMap<Metric, MetricReport> {
    judge(samples, &Judging::in_process(scope, warmup))
}

/// Judge a program's time series: `samples` evenly spaced in time (`elapsed_ms`, since the
/// run started), the first `warmup_secs` seconds of the run left out (default
/// [`default_warmup_secs`]).
pub fn judge_time_series(
    samples: &[Sample],
    warmup_secs: Option<f64>,
    source: SourceKind,
) -> BTreeMap<Metric, MetricReport> {
    let how = Judging {
        axis: XAxis::Second,
        scope: HeapScope::None,
        source,
        warmup: warmup_secs,
        process_alone: false,
    };
    judge(samples, &how)
}

/// The warm-up of a time series when none is given: max(1 s, 20% of the run).
pub fn default_warmup_secs(run_secs: f64) -> f64 {
    (0.2 * run_secs).max(1.0)
}

/// Judge every metric measured in all of `samples`, the one way for every source and axis.
///
/// Each sample's x is its iteration, or its seconds since the run started, so slopes come out
/// per iteration or per second directly, also when a long run merged neighbours (see
/// store.rs): the evenly spaced samples are judged, a partly filled last bucket left out.
/// [`MetricReport::warmup`] is the `iteration` of the first sample judged (for a time series,
/// sampling intervals).
pub fn judge(samples: &[Sample], how: &Judging) -> BTreeMap<Metric, MetricReport> {
    let mut metrics = BTreeMap::new();
    let Some(Judged {
        span,
        samples,
        x,
        series: measured,
    }) = judged(samples, how)
    else {
        return metrics;
    };
    let samples = &samples[..];
    let last = samples[samples.len() - 1];
    // The warm-up in samples: those before the first one at or past the warm-up asked for.
    let warmup = match (how.axis, how.warmup) {
        (XAxis::Iteration, None) => None,
        (XAxis::Iteration, Some(w)) => Some(x.iter().position(|&xi| xi >= w).unwrap_or(x.len())),
        (XAxis::Second, w) => {
            let secs = w.unwrap_or_else(|| default_warmup_secs(last.elapsed_ms / 1e3));
            Some(x.iter().position(|&xi| xi >= secs).unwrap_or(x.len()))
        }
    };
    for (metric, series, thresholds) in measured {
        let x = &x[..series.len()];
        let j = verdict::judge_on(x, &series, &thresholds, warmup, how.axis);
        let w = j.warmup.min(series.len() - 1);
        let end = *series.last().unwrap_or(&0.0);
        let (per_iteration, per_second) = match how.axis {
            XAxis::Iteration => (j.slope_per_iteration, None),
            XAxis::Second => (None, j.slope_per_iteration),
        };
        let mut reason = j.reason;
        if metric == Metric::RssBytes && j.verdict == Verdict::Clean {
            // Clean at RSS's resolution is not clean: say what it could not see.
            reason.push_str(&format!(
                "; at RSS's resolution: no growth above {} {}, smaller leaks are invisible to RSS",
                crate::format::format_bytes(thresholds.tau_ok),
                match how.axis {
                    XAxis::Iteration => "per iteration",
                    XAxis::Second => "per second",
                }
            ));
        }
        if metric == Metric::RssBytes {
            reason.push_str(&file_pages_note(&samples[w..series.len()]));
        }
        let left_out = samples.len() - series.len();
        if left_out > 0 {
            reason.push_str(&format!(
                " (the last {left_out} sample(s), which lack it, are left out)"
            ));
        }
        if span > 1 {
            let what = match how.axis {
                XAxis::Iteration => "iterations",
                XAxis::Second => "intervals",
            };
            reason.push_str(&format!(
                " (judged on samples of {span} {what} each, merged to bound memory)"
            ));
        }
        metrics.insert(
            metric,
            MetricReport {
                verdict: j.verdict,
                gating: gates(metric, how.scope, how.source)
                    || (how.process_alone && gates(metric, HeapScope::Process, how.source)),
                slope_per_iteration: per_iteration,
                slope_per_second: per_second,
                ci: j.ci,
                warmup: samples[w].iteration,
                p_value: j.p_value,
                shape: j.shape,
                after_warmup: series[w],
                end,
                growth: end - series[w],
                confirmed_within: j.verdict == Verdict::Leak && j.confirmed_within,
                reason,
            },
        );
    }
    blocks_still_filling(&mut metrics);
    if how.source == SourceKind::InProcess && how.scope == HeapScope::Process {
        rss_outside_heap(samples, &mut metrics);
    }
    metrics
}

/// What [`judge`] judges of `samples`: those evenly spaced, each one's x (its iteration, or
/// its seconds since the run started), and every measured metric's series with its
/// thresholds. `None` without samples.
struct Judged {
    /// Iterations (or sampling intervals) per sample: above 1 where a long run merged them.
    span: u32,
    samples: Vec<Sample>,
    x: Vec<f64>,
    series: Vec<(Metric, Vec<f64>, Thresholds)>,
}

fn judged(samples: &[Sample], how: &Judging) -> Option<Judged> {
    let (span, samples) = evenly_spaced(samples);
    if samples.is_empty() {
        return None;
    }
    let x: Vec<f64> = samples
        .iter()
        .map(|s| match how.axis {
            XAxis::Iteration => f64::from(s.iteration),
            XAxis::Second => s.elapsed_ms / 1e3,
        })
        .collect();
    // Seconds per sampling interval, measured, for effect sizes given per interval.
    let per_interval = match how.axis {
        XAxis::Second if x.len() > 1 && x[x.len() - 1] > x[0] => {
            (x[x.len() - 1] - x[0]) / ((x.len() - 1) as f64 * f64::from(span))
        }
        _ => 1.0,
    };
    let churn = mean_churn(&samples);
    let series = measured(&samples)
        .into_iter()
        .map(|(metric, series)| (metric, series, thresholds(metric, how, churn, per_interval)))
        .collect();
    Some(Judged {
        span,
        samples,
        x,
        series,
    })
}

/// RSS growth after warm-up that no memory of the counted heap can explain, besides a slack for
/// the allocator's own pages: at least 1 MiB, or a quarter of the heap's highest level.
const OUTSIDE_HEAP_SLACK: f64 = 1024.0 * 1024.0;

/// What the allocator may take for each live block beyond its bytes: glibc's chunk header and
/// rounding make a block of 8 to 24 B take 32 B.
const CHUNK_OVERHEAD: f64 = 32.0;

/// In process RSS only warns (the heap counters are the memory signal), but they count only
/// what goes through `profiler::Alloc`: a C library called through FFI allocates with libc's
/// malloc, and `std::alloc::System`, mmap and thread stacks go around it too. 256 KiB leaked
/// per iteration through `malloc` read "heap clean, RSS warning, passed", exit 0. Where RSS
/// grew after warm-up by more than the whole counted heap at its highest since (its pages
/// touched late, a buffer filled gradually, are at most that), with [`CHUNK_OVERHEAD`] per live
/// block and [`OUTSIDE_HEAP_SLACK`], while both heap metrics are clean, the RSS leak gates.
/// (Beside other tests of a parallel `cargo test`, a leak seen in place is checked again alone
/// in a child process, where the process's RSS is the test's.) A heap still filling (a cache,
/// judged inconclusive) says nothing of RSS beyond it: its RSS stays a warning.
fn rss_outside_heap(samples: &[Sample], metrics: &mut BTreeMap<Metric, MetricReport>) {
    let clean = |metric| metrics.get(&metric).map(|m| m.verdict) == Some(Verdict::Clean);
    let heap_clean = clean(Metric::HeapBytes) && clean(Metric::HeapBlocks);
    let Some(rss) = metrics.get_mut(&Metric::RssBytes) else {
        return;
    };
    if rss.gating || rss.verdict != Verdict::Leak {
        return;
    }
    let window: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.iteration >= rss.warmup)
        .collect();
    let top = window
        .iter()
        .filter_map(|s| s.heap_peak_bytes.max(s.heap_bytes))
        .max();
    let blocks = window
        .iter()
        .filter_map(|s| s.heap_blocks)
        .max()
        .unwrap_or(0);
    let Some(top) = top else {
        return;
    };
    let held = top.max(0) as f64 + CHUNK_OVERHEAD * blocks.max(0) as f64;
    let bound = held + OUTSIDE_HEAP_SLACK.max(0.25 * held);
    if rss.growth > bound {
        if !heap_clean {
            return;
        }
        rss.gating = true;
        rss.reason.push_str(&format!(
            "; more than the whole counted heap ({} at its highest, with the allocator's \
             share): memory outside profiler::Alloc grows (a C library's malloc through FFI, \
             mmap, std::alloc::System), a leak",
            crate::format::format_bytes(held)
        ));
    } else {
        rss.reason.push_str(&format!(
            "; within what the counted heap ({} at its highest, with the allocator's share) \
             may take, so not told from heap pages touched late: a warning",
            crate::format::format_bytes(held)
        ));
    }
}

/// One memory seen two ways: heap bytes growing in lumps (a table doubling as entries come
/// in) read as linear growth, while the blocks' growth is still slowing down like a cache
/// filling. A FIFO cache of 500 entries over 800 random keys, full at iteration 39, was a
/// confirmed leak at 40 that way. The bytes are not a leak until a longer run shows the
/// blocks settle or keep growing; a leak the run confirmed by itself stands.
fn blocks_still_filling(metrics: &mut BTreeMap<Metric, MetricReport>) {
    let filling = metrics
        .get(&Metric::HeapBlocks)
        .is_some_and(|b| b.verdict == Verdict::Inconclusive && b.shape == Shape::Decelerating);
    if let Some(bytes) = metrics.get_mut(&Metric::HeapBytes)
        && filling
        && bytes.verdict == Verdict::Leak
        && !bytes.confirmed_within
    {
        bytes.verdict = Verdict::Inconclusive;
        bytes.reason.push_str(
            ", but heap blocks still grow ever slower, like a cache filling: not a leak until \
             a longer run shows which; run longer",
        );
    }
}

/// The effect-size thresholds of `metric`, per unit of the axis.
fn thresholds(metric: Metric, how: &Judging, churn: Churn, per_interval: f64) -> Thresholds {
    match (how.axis, metric) {
        (XAxis::Iteration, Metric::HeapBytes) => Thresholds::heap_bytes(churn.bytes),
        (XAxis::Iteration, Metric::HeapBlocks) => Thresholds::heap_blocks(churn.allocations),
        (XAxis::Iteration, Metric::RssBytes) if how.source != SourceKind::InProcess => {
            program_rss_thresholds()
        }
        (XAxis::Iteration, Metric::RssBytes) => Thresholds::rss_bytes(churn.bytes),
        (XAxis::Second, Metric::RssBytes) => Thresholds {
            tau: RSS_TAU_PER_SECOND,
            tau_ok: RSS_TAU_OK_PER_SECOND,
            ..Thresholds::rss_bytes(0.0)
        },
        (XAxis::Second, Metric::HeapBytes) => {
            // Given per sampling interval: per second, divide by its length.
            let t = Thresholds::heap_bytes(0.0);
            Thresholds {
                tau: t.tau / per_interval,
                tau_ok: t.tau_ok / per_interval,
                ..t
            }
        }
        (XAxis::Second, Metric::HeapBlocks) => {
            // As per iteration, per sampling interval: per second, divide by its length. (A
            // clean limit of 0, which memory freed late never reaches, made a collector's
            // backlog clean or inconclusive on the sign of a bound.)
            let t = Thresholds::heap_blocks(churn.allocations);
            Thresholds {
                tau_ok: t.tau_ok / per_interval,
                ..t
            }
        }
        (_, Metric::Fds | Metric::Threads) => Thresholds::count(),
    }
}

/// Every metric measured in all of `samples`, with its series; or in all but a trailing run
/// of them, when it still covers at least half: a program that exits on its own after its
/// last marker line leaves the lines the profiler read after its exit with heap counters
/// (from the library's snapshot) but no RSS, fds nor threads, and one such line must not
/// take 59 good samples of those metrics with it. The series is then that prefix.
fn measured(samples: &[Sample]) -> Vec<(Metric, Vec<f64>)> {
    Metric::ALL
        .into_iter()
        .filter_map(|metric| {
            let series: Vec<f64> = samples.iter().map_while(|s| metric.of(s)).collect();
            let trailing_gap = samples[series.len()..]
                .iter()
                .all(|s| metric.of(s).is_none());
            let whole = series.len() == samples.len();
            let enough = series.len() >= 2 && 2 * series.len() >= samples.len();
            (!series.is_empty() && trailing_gap && (whole || enough)).then_some((metric, series))
        })
        .collect()
}

/// What the RSS verdict left out, when it matters: the pages of mapped files (a file read
/// through mmap, code faulted in), which came or went by at least 1 MiB over the judged
/// samples. Empty otherwise.
fn file_pages_note(judged: &[Sample]) -> String {
    let file: Vec<u64> = judged.iter().filter_map(|s| s.rss_file_bytes).collect();
    let (Some(first), Some(last)) = (file.first(), file.last()) else {
        return String::new();
    };
    let moved = *last as i64 - *first as i64;
    if moved.unsigned_abs() < 1 << 20 {
        return String::new();
    }
    format!(
        "; pages of mapped files, which the kernel can drop and read again, are not counted: \
         they {} by {} over these samples, to {}",
        if moved > 0 { "grew" } else { "fell" },
        crate::format::format_bytes(moved.unsigned_abs() as f64),
        crate::format::format_bytes(*last as f64)
    )
}

/// Mean bytes and allocations per iteration: the churn the thresholds scale with.
fn mean_churn(samples: &[Sample]) -> Churn {
    let mean = |v: Vec<i64>| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64
        }
    };
    Churn {
        bytes: mean(samples.iter().filter_map(|s| s.allocated_bytes).collect()),
        allocations: mean(samples.iter().filter_map(|s| s.allocations).collect()),
    }
}

/// What an iteration allocates on average (freed or not).
#[derive(Debug, Clone, Copy)]
struct Churn {
    bytes: f64,
    allocations: f64,
}

/// Judge made-up samples of every shape once, so that the verdict code is resident before a
/// run's first sample: faulting its pages in at a checkpoint would show as RSS growth.
pub(crate) fn fault_in_code() {
    let samples: Vec<Sample> = (0..48i64)
        .map(|i| {
            let wave = (i % 7) * 3;
            Sample {
                iteration: i as u32,
                heap_bytes: Some(1000 + 64 * i + wave),
                heap_blocks: Some(10 + i / 5),
                allocated_bytes: Some(4096),
                rss_bytes: Some(1 << 20),
                fds: Some(3 + (i > 20) as u64),
                threads: Some((1000 - 1000 / (i as u64 + 1)) % 13),
                ..Sample::default()
            }
        })
        .collect();
    std::hint::black_box(judge_samples(&samples, None, HeapScope::Process));
}

/// The run's verdict: from gating metrics only (RSS warns).
///
/// A run in which no gating metric could be judged (no samples: a marker that never
/// matched, a setup that failed) is inconclusive, never clean.
pub fn run_verdict(metrics: &BTreeMap<Metric, MetricReport>) -> Verdict {
    let mut gating = metrics.values().filter(|m| m.gating).peekable();
    if gating.peek().is_none() {
        return Verdict::Inconclusive;
    }
    combine(gating.map(|m| m.verdict))
}

/// The run's warm-up as shown in its header: the largest of its gating metrics' warm-ups
/// (RSS, which only warns in process, may have waited longer; its row says so).
pub fn run_warmup(metrics: &BTreeMap<Metric, MetricReport>) -> u32 {
    let gating = metrics
        .values()
        .filter(|m| m.gating)
        .map(|m| m.warmup)
        .max();
    gating
        .or_else(|| metrics.values().map(|m| m.warmup).max())
        .unwrap_or(0)
}

/// Re-judge a run (e.g. one read from a saved report) from its samples. `warmup` is in
/// iterations; on a time axis it is ignored and the default warm-up in seconds applies.
pub fn rejudge(run: &mut Run, warmup: Option<u32>) {
    let how = Judging {
        axis: run.x_axis,
        scope: run.heap_scope,
        source: run.source.kind,
        warmup: match run.x_axis {
            XAxis::Iteration => warmup.map(f64::from),
            XAxis::Second => None,
        },
        // Copies of `--concurrency` ran alone in their process.
        process_alone: run.concurrency.is_some(),
    };
    run.metrics = judge(&run.samples, &how);
    run.warmup = run_warmup(&run.metrics);
    run.verdict = run_verdict(&run.metrics);
}

/// A run whose heap metrics the scope could not see (`why`): its heap verdicts become
/// inconclusive, shape "blind", saying so, and the run's verdict follows. What was seen stays
/// in the sentence, for whoever looks.
pub fn blind(run: Run, why: &str) -> Run {
    blind_because(
        run,
        &format!(
            "{why}; so it can tell neither a leak nor a clean run: use .isolated(), run under \
             cargo nextest, or Scope::Process"
        ),
    )
}

/// [`blind`], saying `why` and nothing more.
pub fn blind_because(run: Run, why: &str) -> Run {
    blind_as(run, why, "seen in this thread")
}

/// The heap verdicts of `run` made blind for `why`, the samples' own verdict kept in the
/// reason after `seen` ("seen in this thread", "the samples alone").
pub fn blind_as(mut run: Run, why: &str, seen: &str) -> Run {
    for (metric, m) in run.metrics.iter_mut() {
        if !matches!(metric, Metric::HeapBytes | Metric::HeapBlocks) {
            continue;
        }
        m.reason = format!("{why} ({seen}: {}, {})", m.verdict, m.reason);
        m.verdict = Verdict::Inconclusive;
        m.shape = Shape::Blind;
    }
    run.verdict = run_verdict(&run.metrics);
    run.warmup = run_warmup(&run.metrics);
    run
}

/// What the engine does after judging at a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Stop,
    /// Run on to this many iterations, for this reason.
    ExtendTo(u32, String),
}

/// How far a run may extend: `max` to confirm a leak or resolve an inconclusive metric,
/// `noisy` (at least `max`) while every inconclusive gating metric is only too noisy to bound
/// yet ([`too_noisy`]), and `confirm` (at least `noisy`) to confirm a leak first seen at or
/// past `noisy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max: u32,
    pub noisy: u32,
    pub confirm: u32,
}

impl Limits {
    /// The most iterations any extension may reach.
    pub fn most(&self) -> u32 {
        self.max.max(self.noisy).max(self.confirm)
    }
}

/// An inconclusive verdict that more samples resolve by themselves: no significant trend (of
/// the series, or of a sawtooth's floors), shape `noisy` (bounds not yet under or not yet
/// within the clean limit) or `sawtooth` (floors not yet bounded, too few drops or resets
/// yet). Growth below the effect size, steps, deceleration and the like are not: they stop at
/// the ordinary bound.
pub fn too_noisy(m: &MetricReport) -> bool {
    let not_significant = m.p_value.is_none_or(|p| p >= crate::verdict::ALPHA);
    m.verdict == Verdict::Inconclusive
        && matches!(m.shape, Shape::Noisy | Shape::Sawtooth)
        && not_significant
}

/// The fewest iterations a leak is confirmed at while the run can extend: the default run's
/// checkpoint that first sees a leak.
pub const MIN_CONFIRMING: u32 = 20;

/// The fewest iterations an RSS leak is confirmed at while the run can extend. RSS follows
/// the allocator's start-up (arenas and thread caches filling, pages given back late) for
/// tens of iterations: a clean tokio service on jemalloc (2.5 ms per iteration) rose its RSS
/// for up to 40 iterations in 3 runs of 40, e.g. 3.4 to 5.3 MiB, and those leaks at 20 were
/// confirmed at 40 (exit 1) though its samples 21 to 40 rose by themselves; from 80 on its
/// RSS wandered about its level in every run of 102 that ran to 1,280.
pub const MIN_CONFIRMING_RSS: u32 = 80;

/// [`MIN_CONFIRMING`], or [`MIN_CONFIRMING_RSS`] for RSS.
fn min_confirming(metric: Metric) -> u32 {
    if metric == Metric::RssBytes {
        MIN_CONFIRMING_RSS
    } else {
        MIN_CONFIRMING
    }
}

/// Decide whether to run on (docs/VERDICT.md, confirmation and extension): a leak seen at N must hold at 2N;
/// an inconclusive gating metric extends the run; both bounded by `limits.max`, or by
/// `limits.noisy` when every inconclusive gating metric is only too noisy to bound yet (and,
/// at or past `limits.max`, for confirming a leak first seen there).
///
/// `earlier` says which metrics were `Leak` at the previous checkpoint (a leak now confirms
/// them) and which leaked at one before it and have been inconclusive since (they extend the
/// run; a leak now confirms them only if it grows at least half as fast: [`Earlier::confirmed`]).
pub fn next_step(
    metrics: &BTreeMap<Metric, MetricReport>,
    earlier: &Earlier,
    done: u32,
    limits: Limits,
) -> Next {
    let confirmed = earlier.confirmed(metrics);
    let gating = || metrics.iter().filter(|(_, m)| m.gating);
    // A leak the run confirmed by itself (`confirmed_within`) still runs to twice the
    // iterations while it can, and stands on its own only where the run cannot extend
    // (`settle_unconfirmed`): an interner over a bounded vocabulary (10,000 words, 300 draws
    // per iteration) doubled at 2, 4, 8 and 18 as its filling slowed, "confirmed within the
    // run" at 20 (exit 1), and was clean at 40.
    // Nor is a leak confirmed below MIN_CONFIRMING iterations while the run can go on: a
    // cache filling for 15 iterations (quick_cache, 3,000 entries over skewed keys) was a leak
    // at 8 and again at 16 with `--iterations 2` (exit 1), and is clean at 32. RSS waits for
    // MIN_CONFIRMING_RSS.
    let seen_before = |k: &Metric| confirmed.contains(k) && done >= min_confirming(*k);
    let unconfirmed: Vec<Metric> = gating()
        .filter(|(k, m)| m.verdict == Verdict::Leak && !seen_before(k))
        .map(|(k, _)| *k)
        .collect();
    let any_confirmed = gating().any(|(k, m)| m.verdict == Verdict::Leak && seen_before(k));
    let inconclusive: Vec<(Metric, &MetricReport)> = gating()
        .filter(|(_, m)| m.verdict == Verdict::Inconclusive)
        .map(|(k, m)| (*k, m))
        .collect();
    let noisy = !inconclusive.is_empty() && inconclusive.iter().all(|(_, m)| too_noisy(m));
    // Past the ordinary bound (only noise brought the run there), a leak may still be
    // confirmed at twice the iterations, but only noise extends it further.
    let past = done > limits.max;
    let noisy_bound = limits.noisy.max(limits.max);
    let within = |bound: u32| done.saturating_mul(2).min(bound);
    if any_confirmed {
        return Next::Stop;
    }
    // A leak first seen at the ordinary bound is confirmed at twice it too: a leak of one
    // block per iteration under a random backlog, significant only at 160 iterations, ended
    // inconclusive (exit 0) while a noisy clean metric could run to 64 times the count. So is
    // one first seen at the noise bound: a tokio service leaking 64 KiB per iteration on
    // mimalloc, whose RSS rose in 2 MiB steps with a purge now and then, was too noisy to
    // bound up to 640 iterations and a leak at 1280, the last checkpoint (exit 0).
    let to = within(if done >= noisy_bound {
        limits.confirm.max(noisy_bound)
    } else if done >= limits.max {
        noisy_bound
    } else {
        limits.max
    });
    let confirming = |metrics: &[Metric], why: &str| {
        (!metrics.is_empty() && to > done)
            .then(|| Next::ExtendTo(to, format!("{} {why}, confirming", names(metrics))))
    };
    if let Some(next) = confirming(&unconfirmed, &format!("leak at {done} iterations")) {
        return next;
    }
    // A leak seen before that this checkpoint could neither confirm nor clear runs on, to the
    // same bounds: a tokio service leaking 64 KiB per iteration on mimalloc was a leak at 160
    // and, at 320, "11 steps, the last at 272, none since: growth that stopped; run longer"
    // (its 2 MiB segments came at gaps of 3 to 36 iterations), and the run stopped there,
    // exit 0. (A leak after the pause confirms it only at a rate that held: see `Earlier`.)
    let undecided: Vec<Metric> = inconclusive
        .iter()
        .filter(|(k, _)| earlier.concerns(k))
        .map(|(k, _)| *k)
        .collect();
    let why = format!("leak before, inconclusive at {done} iterations");
    if let Some(next) = confirming(&undecided, &why) {
        return next;
    }
    let to = match (noisy, past) {
        (true, _) => within(noisy_bound),
        (false, false) => within(limits.max),
        (false, true) => done,
    };
    if !inconclusive.is_empty() && to > done {
        let names = names(&inconclusive.iter().map(|(k, _)| *k).collect::<Vec<_>>());
        let why = if noisy && done >= limits.max {
            "too noisy to bound yet"
        } else {
            "inconclusive"
        };
        return Next::ExtendTo(
            to,
            format!(
                "{names} {why} at {}",
                crate::format::iterations_of(u64::from(done), "")
            ),
        );
    }
    Next::Stop
}

/// The leaks of the checkpoints so far, as the next one needs them ([`next_step`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Earlier {
    /// leaking at the previous checkpoint: a leak at the next confirms them
    pub leaked: Vec<Metric>,
    /// leaking at a checkpoint before it and inconclusive since (neither confirmed nor
    /// cleared), with the slope of that leak: they extend the run as a new leak does
    pub undecided: Vec<(Metric, f64)>,
    /// the slopes of `leaked`
    slopes: Vec<f64>,
    /// those of `leaked` and `undecided` whose samples after the previous checkpoint, alone,
    /// do not rise ([`Earlier::look_since`])
    stopped: Vec<Metric>,
    /// that checkpoint, once looked since
    since: Option<u32>,
}

impl Earlier {
    /// What the checkpoint after this one, whose verdicts are `metrics`, leaves for the next.
    pub fn after(&self, metrics: &BTreeMap<Metric, MetricReport>) -> Earlier {
        let (leaked, slopes) = metrics
            .iter()
            .filter(|(_, m)| m.verdict == Verdict::Leak)
            .map(|(k, m)| (*k, m.slope().unwrap_or(0.0)))
            .unzip();
        let undecided = metrics
            .iter()
            .filter(|(_, m)| m.verdict == Verdict::Inconclusive)
            .filter_map(|(k, _)| Some((*k, self.leak_slope(k)?)))
            .collect();
        Earlier {
            leaked,
            undecided,
            slopes,
            stopped: Vec::new(),
            since: None,
        }
    }

    /// Look at the samples after `since`, the previous checkpoint, alone: those of `samples`
    /// (the run's so far, judged as `how`) past it. A leak seen there (or before it and
    /// undecided since) whose series does not rise by itself after it (*leak(tau)* of the
    /// trend of those raw samples, `verdict::rises`) has not shown that it went on, and a
    /// plain-growth leak now does not confirm it ([`Earlier::confirmed`]). The whole series
    /// can still read as a leak: its early rise carries the slope. RSS of a clean tokio
    /// service on jemalloc, approaching its level and then wandering by +-0.5 MiB, leaked 44
    /// KiB per iteration at 20 and 17.6 KiB at 40, confirmed (exit 1) in 5 runs of 60; its
    /// samples 21 to 40 alone did not rise significantly in any of them. Fewer than
    /// [`MIN_CONFIRMING`] iterations since the checkpoint (a bound the user set just past
    /// it) are too few to tell: not looked at. Only on the iteration axis.
    pub fn look_since(&mut self, samples: &[Sample], how: &Judging, since: u32) {
        self.stopped.clear();
        self.since = None;
        let last = samples.last().map_or(0, |s| s.iteration);
        if how.axis != XAxis::Iteration
            || last < since.saturating_add(MIN_CONFIRMING)
            || (self.leaked.is_empty() && self.undecided.is_empty())
        {
            return;
        }
        let Some(judged) = judged(samples, how) else {
            return;
        };
        self.since = Some(since);
        for (metric, series, th) in &judged.series {
            if !self.concerns(metric) {
                continue;
            }
            let after = judged.x[..series.len()]
                .iter()
                .position(|&x| x > f64::from(since))
                .unwrap_or(series.len());
            if !verdict::rises(&judged.x[after..series.len()], &series[after..], th) {
                self.stopped.push(*metric);
            }
        }
    }

    /// The metrics whose samples after the previous checkpoint did not rise by themselves,
    /// with that checkpoint ([`Earlier::look_since`]).
    pub fn stopped(&self) -> (&[Metric], Option<u32>) {
        (&self.stopped, self.since)
    }

    /// The metrics leaking in `metrics` that an earlier leak confirms (a plain-growth leak
    /// only if it went on after the previous checkpoint: [`Earlier::look_since`]): one at the
    /// previous checkpoint, or one before an inconclusive pause if the growth held its rate (a slope
    /// at least half that leak's). Growth that slowed to under half is what a cache filling
    /// does: RSS under jemalloc, filling for ~800 iterations of a clean tokio service (2.5 ms
    /// per iteration), leaked 73 KiB per iteration at 40, was "decelerating" at 80 and leaked
    /// 12.8 KiB per iteration at 160, then paused and was clean at 640; taken as confirmed at
    /// 160 it was a false leak in 2 runs of 3. A leak under mimalloc that paused held 106 ->
    /// 54 -> 65 KiB per iteration at 160, 640 and 2,560.
    pub fn confirmed(&self, metrics: &BTreeMap<Metric, MetricReport>) -> Vec<Metric> {
        metrics
            .iter()
            .filter(|(k, m)| {
                let went_on = m.shape != Shape::Linear || !self.stopped.contains(k);
                m.verdict == Verdict::Leak
                    && went_on
                    && (self.leaked.contains(k)
                        || self.undecided.iter().any(|&(u, before)| {
                            u == **k && m.slope().unwrap_or(0.0) >= 0.5 * before
                        }))
            })
            .map(|(k, _)| *k)
            .collect()
    }

    /// The slope of `metric`'s leak at an earlier checkpoint not cleared since, if any.
    fn leak_slope(&self, metric: &Metric) -> Option<f64> {
        let leaked = self.leaked.iter().zip(&self.slopes);
        (leaked.map(|(k, s)| (*k, *s)))
            .chain(self.undecided.iter().copied())
            .find(|(k, _)| k == metric)
            .map(|(_, s)| s)
    }

    /// Whether `metric` leaked at an earlier checkpoint and was not cleared since.
    fn concerns(&self, metric: &Metric) -> bool {
        self.leak_slope(metric).is_some()
    }
}

fn names(metrics: &[Metric]) -> String {
    metrics
        .iter()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A leak already seen at the previous checkpoint, or one the run confirmed by itself:
/// containers seen doubling in its first half that doubled again in its second, as
/// predicted (`verdict::Judgement::confirmed_within`): the growth seen at N/2 went on to N, which is
/// what confirmation at twice the iterations asks.
fn is_confirmed(metric: &Metric, m: &MetricReport, confirmed: &[Metric]) -> bool {
    confirmed.contains(metric) || (m.verdict == Verdict::Leak && m.confirmed_within)
}

/// Why a run ended without confirming its leaks at twice the iterations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unconfirmed {
    /// It could have extended (it stopped at its bound, or was interrupted): such a leak is
    /// inconclusive.
    MayExtend,
    /// Extension is off: reported as seen, saying so.
    ExtensionOff,
    /// A budget was exceeded at `iteration`, which stops the run: reported as seen, saying so.
    OverBudget { iteration: u32 },
}

/// What the process held once it idled after a checkpoint's iterations.
#[derive(Debug, Clone)]
pub struct IdleLook {
    /// Iterations done when it was taken.
    pub iterations: u32,
    /// The lowest each metric read over the look: what other threads held for a while and
    /// gave back meanwhile (a batch freed every 40-150 ms) is out of it.
    pub sample: Sample,
    pub waited: Duration,
    /// The metrics that leaked at that checkpoint.
    pub held: Vec<Metric>,
}

/// The gating metrics an idle look at a checkpoint is for: those leaking there, and at the
/// last checkpoint (`last`) those that leaked at the look before (`before`, taken at the
/// checkpoint before) and cannot be told now. (A metric that only warns, RSS in process
/// scope, never makes the run wait; nor does one the series now finds clean.)
pub fn held(
    metrics: &BTreeMap<Metric, MetricReport>,
    before: Option<&IdleLook>,
    last: bool,
) -> Vec<Metric> {
    let held_before = |metric: &Metric, m: &MetricReport| {
        last && m.verdict == Verdict::Inconclusive
            && before.is_some_and(|b| b.held.contains(metric))
    };
    metrics
        .iter()
        .filter(|(metric, m)| m.gating && (leaks_now(m) || held_before(metric, m)))
        .map(|(&metric, _)| metric)
        .collect()
}

fn leaks_now(m: &MetricReport) -> bool {
    m.verdict == Verdict::Leak && m.growth > 0.0
}

/// A leak must outlast the iterations. At each checkpoint that found one, the process idled
/// a while without iterations (its other threads running on: a logger flushing every 10 ms,
/// detached threads sleeping their last 30 ms), and the lowest each metric read meanwhile was
/// kept. Nothing another thread holds for a while is in such a floor. At the last checkpoint,
/// a gating metric that leaked at the look before (`before`: the engine passes only one taken
/// at the checkpoint just before, so that the two floors span one doubling of the run, as
/// confirmation at twice the iterations does) or leaks now is judged by what the idle process
/// kept between the two floors, over the iterations between them:
/// - nothing kept, and the last floor down to the lowest level the series read after the
///   warm-up: growth held for a while, not kept ("released"): clean where the series leaks
///   now or could not be judged, having leaked at the look before. Above that level the
///   first look may have held a backlog the last saw freed (a thread that empties a log
///   every 500 ms, longer than a look): the last floor is measured from that level instead,
///   a leak standing above a leak's threshold per iteration, inconclusive below it;
/// - kept, above a leak's threshold per iteration (128 B of heap; of blocks, the clean limit a
///   series may move by, 1e-3 x allocations per iteration up to half a block; any fd or
///   thread): a leak the series shows now is confirmed by the run itself, and so is one it
///   showed at the look before and can no longer tell from level shifts now (an arena whose
///   chunks double), unless the series says why memory is kept: growth slowing like a cache
///   still filling, or the running process reading below the first floor between the looks
///   (memory it reclaims only by running, as epoch-based reclamation does, was in the
///   floors): inconclusive;
/// - kept, but less: a leak the series shows now cannot be told from a backlog other threads
///   keep: inconclusive.
///
/// Looks never overturn a series that saw growth stop (clean): memory kept between two looks
/// is also what a cache filling up to its capacity keeps. With one look only (the run did
/// not extend), growth given back down to the lowest level after the warm-up cannot be told
/// from a smaller leak: inconclusive.
pub fn idle_verdicts(
    metrics: &mut BTreeMap<Metric, MetricReport>,
    samples: &[Sample],
    how: &Judging,
    before: Option<&IdleLook>,
    last: &IdleLook,
) {
    let waited = crate::format::format_ms(last.waited.as_secs_f64() * 1e3);
    let churn = mean_churn(samples);
    for (&metric, m) in metrics.iter_mut() {
        let leaks = leaks_now(m);
        let held_before = before.is_some_and(|b| b.held.contains(&metric));
        if !m.gating || !(leaks || held_before) {
            continue;
        }
        let Some(now) = metric.of(&last.sample) else {
            continue;
        };
        let value = |v: f64| crate::format::format_value(metric, v);
        // The lowest level the series read after the warm-up, and at which iteration.
        let (lowest, lowest_at) = samples
            .iter()
            .filter(|s| s.iteration >= m.warmup)
            .filter_map(|s| Some((metric.of(s)?, s.iteration)))
            .fold((m.after_warmup, m.warmup), |low, (v, i)| {
                if v < low.0 { (v, i) } else { low }
            });
        let Some((then, from)) = before.and_then(|b| Some((metric.of(&b.sample)?, b.iterations)))
        else {
            if leaks && now <= lowest {
                m.verdict = Verdict::Inconclusive;
                m.reason = format!(
                    "{}; but all of it was given back within {waited} once the iterations \
                     stopped (other threads held it): a smaller leak cannot be told apart \
                     without a longer run",
                    m.reason
                );
            }
            continue;
        };
        let between = last.iterations.saturating_sub(from).max(1);
        let kept = now - then;
        let per_iteration = kept / f64::from(between);
        let t = thresholds(metric, how, churn, 1.0);
        let bar = match metric {
            Metric::HeapBytes | Metric::RssBytes => t.tau,
            // The series' clean limit: 1e-3 x allocations per iteration, at most half a block.
            Metric::HeapBlocks => t.tau_ok,
            Metric::Fds | Metric::Threads => 0.0,
        };
        let idle = format!(
            "idle after iteration {from} and after iteration {} ({waited} each), the \
             process held at least {} then {}",
            last.iterations,
            value(then),
            value(now)
        );
        let judged_now = leaks || m.verdict == Verdict::Inconclusive;
        if kept <= 0.0 && judged_now && now > lowest {
            // Given back between the floors, but the last one stands above the lowest level
            // the series read: the first look may have held what the last gave back (a
            // backlog another thread frees less often than a look lasts), hiding what was
            // kept meanwhile. Measured from that lowest level instead.
            let since = last.iterations.saturating_sub(lowest_at).max(1);
            let above = (now - lowest) / f64::from(since);
            if leaks && above <= bar {
                m.verdict = Verdict::Inconclusive;
                m.reason = format!(
                    "{}; but {idle}: given back between the looks, yet {} above the lowest \
                     level read after the warm-up ({} per iteration since iteration \
                     {lowest_at}, not above the {} a leak needs): a backlog held at the first \
                     look cannot be told from a smaller leak",
                    m.reason,
                    value(now - lowest),
                    value(above),
                    value(bar)
                );
            } else if leaks {
                m.reason = format!(
                    "{}; {idle}: given back between the looks, yet still {} per iteration \
                     above the lowest level read after the warm-up (iteration {lowest_at}), \
                     above the {} a leak needs",
                    m.reason,
                    value(above),
                    value(bar)
                );
            }
        } else if kept <= 0.0 && judged_now {
            m.verdict = Verdict::Clean;
            m.shape = Shape::Released;
            m.reason = format!(
                "released: {idle}: what grew was held by work other threads finished later, \
                 not kept"
            );
        } else if judged_now && per_iteration > bar {
            // Kept over the iterations between two looks: confirmed by the run itself, if
            // the series does not say why memory may be kept without a leak.
            let kept_idle = format!(
                "{idle}: kept {} per iteration, above the {} a leak needs",
                value(per_iteration),
                value(bar)
            );
            // The lowest the running process read between the looks.
            let low_between = samples
                .iter()
                .filter(|s| s.iteration > from && s.iteration <= last.iterations)
                .filter_map(|s| metric.of(s))
                .fold(f64::INFINITY, f64::min);
            if leaks {
                m.confirmed_within = true;
            } else if m.shape == Shape::Decelerating {
                // A cache still filling between the looks keeps memory too.
                m.reason = format!(
                    "{}; {kept_idle}, which a cache filling up does as well",
                    m.reason
                );
            } else if low_between < then {
                // Memory the process reclaims as it runs (deferred or epoch-based
                // reclamation) was in the first floor: the floors do not compare.
                m.reason = format!(
                    "{}; {kept_idle}, but the running process read as low as {} after \
                     iteration {from}, below the first look's floor: memory it reclaims by \
                     running sits in the floors, which then do not compare",
                    m.reason,
                    value(low_between)
                );
            } else {
                m.confirmed_within = true;
                m.verdict = Verdict::Leak;
                m.reason = format!(
                    "kept {} per iteration while idle ({idle}), above the {} a leak needs, \
                     having leaked at iteration {from}; the series alone read: {}",
                    value(per_iteration),
                    value(bar),
                    m.reason
                );
            }
        } else if leaks {
            m.verdict = Verdict::Inconclusive;
            m.reason = format!(
                "{}; but {idle}: {} per iteration kept, not above the {} a leak needs, the \
                 rest held by other threads for a while",
                m.reason,
                value(per_iteration),
                value(bar)
            );
        }
    }
}

/// [`settle_unconfirmed`] with what `earlier` confirms, saying of a plain-growth leak seen at
/// the previous checkpoint too that it is unconfirmed because its samples since did not rise
/// by themselves ([`Earlier::look_since`]).
pub fn settle(metrics: &mut BTreeMap<Metric, MetricReport>, earlier: &Earlier, why: Unconfirmed) {
    let confirmed = earlier.confirmed(metrics);
    if let ((stopped, Some(since)), Unconfirmed::MayExtend) = (earlier.stopped(), why) {
        for (metric, m) in metrics.iter_mut() {
            if m.gating
                && m.verdict == Verdict::Leak
                && stopped.contains(metric)
                && !is_confirmed(metric, m, &confirmed)
            {
                m.verdict = Verdict::Inconclusive;
                m.reason = format!(
                    "{} (a leak at iteration {since} too, but its samples since did not rise by \
                     themselves: not confirmed)",
                    m.reason
                );
            }
        }
    }
    settle_unconfirmed(metrics, &confirmed, why);
}

/// After the last checkpoint: a leak that could not be confirmed at twice the iterations is
/// reported as inconclusive, saying so (unless the run could not extend: then as seen). A run
/// stopped by a budget also says so where it was too short to judge.
pub fn settle_unconfirmed(
    metrics: &mut BTreeMap<Metric, MetricReport>,
    confirmed: &[Metric],
    why: Unconfirmed,
) {
    for (metric, m) in metrics.iter_mut() {
        if let Unconfirmed::OverBudget { iteration } = why
            && m.verdict == Verdict::Inconclusive
            && let Some(short) = m.reason.strip_suffix("; run more iterations")
        {
            m.reason = format!("{short}: the run stopped at iteration {iteration}, over a budget");
        }
        if !m.gating || m.verdict != Verdict::Leak || is_confirmed(metric, m, confirmed) {
            continue;
        }
        let not_confirmed = "not confirmed at twice the iterations";
        match why {
            Unconfirmed::MayExtend => {
                m.verdict = Verdict::Inconclusive;
                m.reason = format!(
                    "{} (seen at the last checkpoint only, {not_confirmed})",
                    m.reason
                );
            }
            Unconfirmed::ExtensionOff => {
                m.reason = format!("{} ({not_confirmed}: extension is off)", m.reason);
            }
            Unconfirmed::OverBudget { iteration } => {
                m.reason = format!(
                    "{} ({not_confirmed}: the run stopped at iteration {iteration}, over a \
                     budget)",
                    m.reason
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
